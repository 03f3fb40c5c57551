# pnas — make demo runs the main job end to end; make test runs every test.
# Both install what they need on a fresh Debian machine (apt-get, Go proxy).

GO       ?= go
BIN      := bin
PNAS     := $(BIN)/pnas
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
FMNIST   := /usr/share/datasets/fashion-mnist
DEMO     := out/demo
export CGO_ENABLED := 0

.PHONY: all build deps deps-go deps-apt deps-data deps-bench test demo bench bench-search bench-latency onnx-ref fuzz fullrun clean

all: build

# deps-apt installs Debian packages the full runs use, when missing. It
# needs root; without it (or without network) it explains and carries on,
# since tests and the demo fall back to the embedded data subset.
deps-apt:
	@need=""; \
	[ -d $(FMNIST) ] || need="$$need dataset-fashion-mnist"; \
	command -v qemu-aarch64-static >/dev/null || need="$$need qemu-user-static"; \
	[ -x /usr/sbin/sshd ] || need="$$need openssh-server"; \
	command -v scp >/dev/null || need="$$need openssh-client"; \
	command -v llvm-mc >/dev/null || command -v llvm-mc-14 >/dev/null || need="$$need llvm"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null) \
			|| echo "warning: could not install$$need; using the embedded Fashion-MNIST subset"; \
	fi

# deps-data installs only the full Fashion-MNIST set (Debian package
# dataset-fashion-mnist), when missing, for make demo; like deps-apt it
# carries on without root or network (the demo then uses the embedded subset).
deps-data:
	@[ -d $(FMNIST) ] || { \
		echo "installing: dataset-fashion-mnist"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
			|| echo "warning: could not install dataset-fashion-mnist; the demo uses the embedded Fashion-MNIST subset"; \
	}

deps-go:
	$(GO) mod download

deps: deps-apt deps-go

# build needs only Go modules; demo adds the full Fashion-MNIST set when it
# can, and runs on the embedded subset when it cannot.
build: deps-go
	$(GO) build -ldflags "$(LDFLAGS)" -o $(PNAS) ./cmd/pnas

# test: formatting, vet, every package's tests (fuzz seed corpora included),
# the pure-Go kernel twins under -tags noasm, the arm64 build, the runtime's
# tests on the NEON kernels under qemu-aarch64-static, and the
# build with GoMLX's XLA backend (-tags xla).
test: deps
	@echo "== gofmt"; out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^asm/_gen/')); \
		if [ -n "$$out" ]; then echo "not gofmt'd:"; echo "$$out"; exit 1; fi
	@echo "== go vet"; $(GO) vet ./...
	@echo "== go test"; $(GO) test -count=1 -timeout 20m ./...
	@echo "== go test -tags noasm (pure-Go kernels)"; $(GO) test -count=1 -tags noasm ./runtime/... ./search/internal/pnasbe
	@echo "== arm64 build"; GOARCH=arm64 $(GO) vet ./runtime/... ./ir/... ./data/...
	@echo "== arm64 NEON kernels under qemu"; GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64-static ./runtime/...
	@echo "== xla build tag (cgo)"; if command -v gcc >/dev/null; then \
		CGO_ENABLED=1 $(GO) build -tags xla -o /dev/null ./cmd/pnas; \
	else echo "no C compiler: the -tags xla build (GoMLX's XLA backend needs cgo) is not checked"; fi

demo: build deps-data
	@scripts/demo.sh

# deps-bench installs what make bench needs besides Go: node and npm for
# ONNX Runtime (the npm packages themselves come from bench/ort's
# package-lock.json) and gcc for the peak probe.
deps-bench:
	@need=""; \
	command -v node >/dev/null || need="$$need nodejs"; \
	command -v npm >/dev/null || need="$$need npm"; \
	command -v gcc >/dev/null || need="$$need gcc"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null) \
			|| echo "warning: could not install$$need"; \
	fi

# bench: pnas vs ONNX Runtime on the reference models, every x86 target the
# CPU runs (scripts/bench.sh; PASSES, MODELS, THREADS, TARGETS, BASELINE, INTERLEAVE).
bench: build deps-bench
	@scripts/bench.sh

# fullrun: the full Fashion-MNIST pipeline (profile, searches, baselines,
# training, Pareto plot, shipped model), resumable: run it again after an
# interruption. Scale and output via environment variables (docs/search.md).
fullrun: build deps-data
	@scripts/fullrun.sh

# fuzz: a campaign over every fuzz target, FUZZTIME each (default 10m);
# FUZZ=regexp picks targets by name (docs/fuzzing.md).
fuzz:
	@scripts/fuzz.sh $(FUZZ)

# onnx-ref: after an intended change to ONNX export, rewrites the exports in
# ir/onnx/testdata (export_*) and ONNX Runtime's outputs on them, which
# TestExportsRunInORT compares with the interpreter (docs/onnx.md). Needs
# node and npm (installs onnxruntime-node into .cache/ortnode).
onnx-ref:
	$(GO) test -count=1 -run '^TestExportsRunInORT$$' ./ir/onnx -update
	mkdir -p .cache/ortnode && cd .cache/ortnode && { [ -f package.json ] || echo '{"private": true}' > package.json; } && \
		ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0
	for f in ir/onnx/testdata/export_*.pnas.onnx; do b=$${f%.pnas.onnx}; \
		NODE_PATH=$(CURDIR)/.cache/ortnode/node_modules node ir/onnx/testdata/run_onnx.js $$f $$b.input.bin 0 --out $$b.ort_output.bin || exit 1; done
	$(GO) test -count=1 -v -run '^TestExportsRunInORT$$' ./ir/onnx

# bench-search: the searcher's steps on pnas's backend (AVX-512 and AVX2
# kernels) next to PyTorch 1.13 (Debian python3-torch, installed when
# missing) doing the same steps, interleaved; table in docs/search.md.
bench-search: deps
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-torch >/dev/null; }
	$(GO) build -o $(BIN)/searchbench ./search/internal/searchbench
	/usr/bin/python3 scripts/bench_search.py

# bench-latency: predicted vs measured latency of 30 random fmnist networks.
bench-latency: build
	$(PNAS) profile --space fmnist -o out/latbench-lut.json --dir out/latbench-profile
	$(GO) run ./internal/cmd/latbench -lut out/latbench-lut.json -n 30

clean:
	rm -rf $(BIN) out
