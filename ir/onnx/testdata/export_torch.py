# Exports a MobileNetV2 1.0 (plain torch, torchvision-free) to ONNX with PyTorch's exporter,
# with random weights and random BN statistics, plus a reference input and PyTorch's output.
# usage: python3 export_torch.py OUTDIR [small]
#   default: MobileNetV2 1.0, 3x224x224, 1000 classes -> torch_mbv2*
#   small:   1x28x28, stem 16, blocks (t,c,n,s) (1,16,1,1) (6,24,2,2) (6,32,2,2), head 128, 10 classes -> torch_small*
import sys, os, torch, torch.nn as nn
torch.manual_seed(7)
out = sys.argv[1]
small = len(sys.argv) > 2 and sys.argv[2] == 'small'
tag = 'torch_small' if small else 'torch_mbv2'
os.makedirs(out, exist_ok=True)

def cbr(i, o, k, s, g=1, act=True):
    layers = [nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)

class IR(nn.Module):
    def __init__(self, i, o, s, t):
        super().__init__()
        h = i * t
        layers = [] if t == 1 else [cbr(i, h, 1, 1)]
        layers += [cbr(h, h, 3, s, g=h), cbr(h, o, 1, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.res = s == 1 and i == o
    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)

class MBV2(nn.Module):
    def __init__(self, small):
        super().__init__()
        if small:
            cfg, cin, stem, s0, head, classes = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2)], 1, 16, 1, 128, 10
        else:
            cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
            cin, stem, s0, head, classes = 3, 32, 2, 1280, 1000
        feats, c = [cbr(cin, stem, 3, s0)], stem
        for t, o, n, s in cfg:
            for j in range(n):
                feats.append(IR(c, o, s if j == 0 else 1, t)); c = o
        feats.append(cbr(c, head, 1, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(head, classes))
    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)

m = MBV2(small).eval()
for mod in m.modules():
    if isinstance(mod, nn.BatchNorm2d):
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
        mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
x = torch.rand(2, 1, 28, 28) * 4 - 1 if small else torch.rand(2, 3, 224, 224) * 4 - 1
with torch.no_grad():
    y = m(x)
x.numpy().astype('<f4').tofile(os.path.join(out, tag + '.input.bin'))
y.numpy().astype('<f4').tofile(os.path.join(out, tag + '.torch_output.bin'))
for opset, mode in [(13, 'eval'), (13, 'preserve'), (9, 'preserve')]:
    f = os.path.join(out, f'{tag}_op{opset}_{mode}.onnx')
    tm = torch.onnx.TrainingMode.EVAL if mode == 'eval' else torch.onnx.TrainingMode.PRESERVE
    torch.onnx.export(m, x, f, opset_version=opset, training=tm, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True)
    print('wrote', f, os.path.getsize(f))
print('torch', torch.__version__, 'logits[0,:4]', y[0, :4].tolist())
