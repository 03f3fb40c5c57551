// avx2only: an LD_PRELOAD library that hides AVX-512 (and AMX) from the
// process's CPUID, so that a program which picks its kernels from CPUID
// (ONNX Runtime's MLAS) runs its AVX2 code on an AVX-512 machine, as on a
// CPU without AVX-512. make bench uses it to time ONNX Runtime's AVX2
// kernels next to pnas's AVX2 programs (docs/perf.md).
//
// How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID, 0; the
// "cpuid_fault" flag in /proc/cpuinfo) makes every CPUID instruction of the
// process raise SIGSEGV. The handler runs the real CPUID with faulting
// briefly off, clears the AVX-512 and AMX feature bits and the AVX-512
// register state from the result, and steps over the instruction. Threads
// created later inherit the setting. The process's own SIGSEGV handlers
// (installed with sigaction or signal) are kept and called for every other
// fault. XGETBV cannot be intercepted; programs that check CPUID's AVX-512
// bits before XCR0, as MLAS does, see no AVX-512.
//
//   gcc -O2 -shared -fPIC avx2only.c -o avx2only.so -ldl
//   LD_PRELOAD=./avx2only.so node bench.js ...
//
// If the kernel or CPU cannot fault on CPUID, the library prints why and
// the process exits with status 3 before main.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef void (*handler_fn)(int);

static struct sigaction next;   /* the handler the program asked for */
static int active;

static int set_cpuid(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, (unsigned long)on); }

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
	if (leaf == 7 && sub == 0) {
		r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
		r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
		r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
	} else if (leaf == 7 && sub == 1) {
		r[0] &= ~(1u << 5); /* AVX512_BF16 */
	} else if (leaf == 0xd && sub == 0) {
		r[0] &= ~0xe0u;     /* opmask, ZMM_Hi256, Hi16_ZMM state */
	}
}

static void handler(int sig, siginfo_t *si, void *uc_) {
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;
	const uint8_t *ip = (const uint8_t *)g[REG_RIP];
	if (si->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
		uint32_t leaf = g[REG_RAX], sub = g[REG_RCX], r[4];
		set_cpuid(1);
		__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
		set_cpuid(0);
		mask(leaf, sub, r);
		g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
		g[REG_RIP] += 2;
		return;
	}
	if (next.sa_flags & SA_SIGINFO) {
		if (next.sa_sigaction) { next.sa_sigaction(sig, si, uc_); return; }
	} else if (next.sa_handler != SIG_DFL && next.sa_handler != SIG_IGN) {
		next.sa_handler(sig); return;
	}
	/* no handler of the program's own: fault again with the default action */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	((sigaction_fn)dlsym(RTLD_NEXT, "sigaction"))(sig, &dfl, NULL);
}


int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
	static sigaction_fn real;
	if (!real) real = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (sig != SIGSEGV || !active) return real(sig, act, old);
	/* keep our handler installed; remember the program's as the next one */
	if (old) *old = next;
	if (act) next = *act;
	return 0;
}

handler_fn signal(int sig, handler_fn h) {
	static handler_fn (*real)(int, handler_fn);
	if (!real) real = (handler_fn(*)(int, handler_fn))dlsym(RTLD_NEXT, "signal");
	if (sig != SIGSEGV || !active) return real(sig, h);
	handler_fn old = (next.sa_flags & SA_SIGINFO) ? SIG_DFL : next.sa_handler;
	memset(&next, 0, sizeof next);
	next.sa_handler = h;
	return old;
}

__attribute__((constructor)) static void init(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction_fn real = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (real(SIGSEGV, &sa, &next) != 0 || set_cpuid(0) != 0) {
		fprintf(stderr, "avx2only: CPUID faulting is not available here (arch_prctl ARCH_SET_CPUID)\n");
		exit(3);
	}
	active = 1;
}
