// A CPU stand-in for libcuda, libnvrtc, libcublas and libcudnn: just enough of each API for the CUDA
// backend's Gpu tests to run without a GPU (see run-gpu-tests-on-cpu.sh). Device memory is host memory; kernels
// are the real kernels/*.cu compiled as host C++ (emu.h); cuBLAS and cuDNN are naive reference loops.
#include "emu.h"
#include "elementwise.cu"
#include "channels.cu"
#include "pooling.cu"
#include "softmax.cu"
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <map>
#include <utility>
#include <type_traits>
#include <chrono>
#include <algorithm>

using Invoker = void (*)(void**);
template <typename... A, size_t... I>
static void call(void (*f)(A...), void** args, std::index_sequence<I...>) { f(*reinterpret_cast<std::remove_cv_t<A>*>(args[I])...); }
template <auto F> struct Wrap;
struct Entry { const char* name; std::function<void(void**)> invoke; bool sync; };
template <typename... A> static std::function<void(void**)> make(void (*f)(A...)) { return [f](void** a) { call(f, a, std::index_sequence_for<A...>{}); }; }
static std::vector<Entry>& registry() {
    static std::vector<Entry> r = {
#include REGISTRY
    };
    return r;
}

#define API extern "C" __attribute__((visibility("default")))
// FAKE_CUDA_SKIP_COMPUTE=1: kernels, GEMMs and convolutions are checked but not run, so the memory peak of a
// full-size step can be measured in seconds (the results are garbage).
static const bool skipCompute = getenv("FAKE_CUDA_SKIP_COMPUTE") != nullptr;
// ---------------- driver ----------------
API int cuInit(unsigned) { return 0; }
API int cuDriverGetVersion(int* v) { *v = 12080; return 0; }
static const char* errName = "CUDA_ERROR_FAKE";
API int cuGetErrorName(int e, const char** s) { *s = e == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : e == 1 ? "CUDA_ERROR_INVALID_VALUE" : errName; return 0; }
API int cuGetErrorString(int, const char** s) { *s = "fake error"; return 0; }
API int cuDeviceGetCount(int* c) { *c = 1; return 0; }
API int cuDeviceGet(int* d, int o) { *d = o; return 0; }
API int cuDeviceGetName(char* n, int len, int) { snprintf(n, len, "Fake CPU GPU"); return 0; }
API int cuDeviceGetAttribute(int* v, int attr, int) {
    switch (attr) { case 75: *v = 9; break; case 76: *v = 0; break; case 16: *v = 4; break; default: *v = 1; } return 0; }
API int cuDeviceTotalMem_v2(size_t* b, int) { *b = 16ull << 30; return 0; }
static int ctxToken;
API int cuDevicePrimaryCtxRetain(void** c, int) { *c = &ctxToken; return 0; }
API int cuDevicePrimaryCtxRelease_v2(int) { return 0; }
API int cuCtxSetCurrent(void*) { return 0; }
API int cuCtxGetCurrent(void** c) { *c = &ctxToken; return 0; }
API int cuCtxSynchronize() { return 0; }
static int streamToken;
API int cuStreamCreate(void** s, unsigned) { *s = &streamToken; return 0; }
API int cuStreamDestroy_v2(void*) { return 0; }
API int cuStreamSynchronize(void*) { return 0; }
static std::map<uint64_t, size_t> live;
static size_t liveBytes;
API int cuMemAlloc_v2(uint64_t* p, size_t n) {
    if (n > (16ull << 30)) return 2;
    void* m = aligned_alloc(256, (n + 255) / 256 * 256); if (!m) return 2;
    memset(m, 0xCD, n); *p = (uint64_t)m; live[*p] = n; liveBytes += n; return 0; }
API int cuMemFree_v2(uint64_t p) { auto it = live.find(p); if (it == live.end()) { fprintf(stderr, "FAKE: free of unknown %llx\n", (unsigned long long)p); return 1; } liveBytes -= it->second; live.erase(it); free((void*)p); return 0; }
API int cuMemGetInfo_v2(size_t* f, size_t* t) { *t = 16ull << 30; *f = *t - liveBytes; return 0; }
static bool valid(uint64_t p, size_t n) {
    auto it = live.upper_bound(p); if (it == live.begin()) return false; --it;
    return p >= it->first && p + n <= it->first + it->second; }
API int cuMemcpyHtoDAsync_v2(uint64_t d, const void* s, size_t n, void*) { if (!valid(d, n)) { fprintf(stderr, "FAKE: HtoD out of bounds\n"); return 1; } memcpy((void*)d, s, n); return 0; }
API int cuMemcpyDtoHAsync_v2(void* d, uint64_t s, size_t n, void*) { if (!valid(s, n)) { fprintf(stderr, "FAKE: DtoH out of bounds\n"); return 1; } memcpy(d, (void*)s, n); return 0; }
API int cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void*) { if (!valid(s, n) || !valid(d, n)) return 1; memmove((void*)d, (void*)s, n); return 0; }
API int cuMemsetD32Async(uint64_t d, unsigned v, size_t n, void*) { if (!valid(d, n * 4)) { fprintf(stderr, "FAKE: memset out of bounds\n"); return 1; } for (size_t i = 0; i < n; i++) ((unsigned*)d)[i] = v; return 0; }
API int cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void*) { memset((void*)d, v, n); return 0; }
// Events read the host clock: launches run synchronously, so host time is device time here.
using Clock = std::chrono::steady_clock;
API int cuEventCreate(Clock::time_point** e, unsigned) { *e = new Clock::time_point(Clock::now()); return 0; }
API int cuEventDestroy_v2(Clock::time_point* e) { delete e; return 0; }
API int cuEventRecord(Clock::time_point* e, void*) { *e = Clock::now(); return 0; }
API int cuEventSynchronize(Clock::time_point*) { return 0; }
API int cuEventElapsedTime(float* ms, Clock::time_point* a, Clock::time_point* b) { *ms = std::chrono::duration<float, std::milli>(*b - *a).count(); return 0; }
static int moduleToken;
API int cuModuleLoadData(void** m, const void*) { *m = &moduleToken; return 0; }
API int cuModuleUnload(void*) { return 0; }
API int cuModuleGetFunction(void** f, void*, const char* name) {
    for (auto& e : registry()) if (strcmp(e.name, name) == 0) { *f = &e; return 0; }
    fprintf(stderr, "FAKE: no kernel %s\n", name); return 500; }
API int cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void*, void** args, void**) {
    auto* e = (Entry*)f;
    if (gx == 0 || gy == 0 || gy > 65535 || gz != 1 || bx == 0 || bx > 1024 || by != 1 || bz != 1 || shared != 0) { fprintf(stderr, "FAKE: bad launch of %s\n", e->name); return 1; }
    if (skipCompute) return 0;
    if (e->sync) launch(gx, gy, bx, [&] { e->invoke(args); });
    else {
        gridDim = {gx, gy, 1}; blockDim = {bx, 1, 1};
        for (unsigned y = 0; y < gy; y++) for (unsigned b = 0; b < gx; b++) for (unsigned t = 0; t < bx; t++) { blockIdx = {b, y, 0}; threadIdx = {t, 0, 0}; e->invoke(args); }
    }
    return 0; }
// ---------------- NVRTC ----------------
API const char* nvrtcGetErrorString(int) { return "NVRTC_FAKE_ERROR"; }
API int nvrtcVersion(int* a, int* b) { *a = 12; *b = 8; return 0; }
API int nvrtcGetNumSupportedArchs(int* n) { *n = 1; return 0; }
API int nvrtcGetSupportedArchs(int* a) { a[0] = 90; return 0; }
static int programToken;
API int nvrtcCreateProgram(void** p, const char*, const char*, int, const char* const*, const char* const*) { *p = &programToken; return 0; }
API int nvrtcDestroyProgram(void** p) { *p = nullptr; return 0; }
API int nvrtcCompileProgram(void*, int, const char* const*) { return 0; }
API int nvrtcGetProgramLogSize(void*, size_t* n) { *n = 1; return 0; }
API int nvrtcGetProgramLog(void*, char* l) { l[0] = 0; return 0; }
API int nvrtcGetCUBINSize(void*, size_t* n) { *n = 4; return 0; }
API int nvrtcGetCUBIN(void*, char* c) { memcpy(c, "FAKE", 4); return 0; }
API int nvrtcGetPTXSize(void*, size_t* n) { *n = 5; return 0; }
API int nvrtcGetPTX(void*, char* c) { memcpy(c, "FAKE", 5); return 0; }
// ---------------- cuBLAS (column-major, BLAS semantics) ----------------
static int blasToken;
API int cublasCreate_v2(void** h) { *h = &blasToken; return 0; }
API int cublasDestroy_v2(void*) { return 0; }
API int cublasGetVersion_v2(void*, int* v) { *v = 120800; return 0; }
API int cublasGetProperty(int t, int* v) { *v = t == 0 ? 12 : 8; return 0; }
API int cublasSetStream_v2(void*, void*) { return 0; }
API int cublasSetWorkspace_v2(void*, uint64_t, size_t) { return 0; }
API int cublasSetMathMode(void*, int) { return 0; }
API const char* cublasGetStatusString(int) { return "fake cublas status"; }
template <typename T>
static int gemm(int ta, int tb, int m, int n, int k, const T* alpha, const T* A, int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {
    if (lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m) { fprintf(stderr, "FAKE: bad leading dimension\n"); return 7; }
    if (skipCompute) return 0;
    for (int j = 0; j < n; j++) for (int i = 0; i < m; i++) {
        T s = 0; for (int p = 0; p < k; p++) { T a = ta ? A[p + i * lda] : A[i + p * lda]; T b = tb ? B[j + p * ldb] : B[p + j * ldb]; s += a * b; }
        C[i + j * ldc] = *beta == 0 ? *alpha * s : *alpha * s + *beta * C[i + j * ldc]; }
    return 0; }
API int cublasSgemm_v2(void*, int ta, int tb, int m, int n, int k, const float* al, uint64_t A, int lda, uint64_t B, int ldb, const float* be, uint64_t C, int ldc) { return gemm(ta, tb, m, n, k, al, (float*)A, lda, (float*)B, ldb, be, (float*)C, ldc); }
API int cublasDgemm_v2(void*, int ta, int tb, int m, int n, int k, const double* al, uint64_t A, int lda, uint64_t B, int ldb, const double* be, uint64_t C, int ldc) { return gemm(ta, tb, m, n, k, al, (double*)A, lda, (double*)B, ldb, be, (double*)C, ldc); }
// ---------------- cuDNN ----------------
struct Desc { int kind, type = -1, n, c, h, w, pad_h, pad_w, u, v, dil_h, dil_w, mode, math; };
static int dnnToken;
API size_t cudnnGetVersion() { return 90100; }
API const char* cudnnGetErrorString(int) { return "CUDNN_STATUS_FAKE"; }
API void cudnnGetLastErrorString(char* m, size_t n) { if (n) m[0] = 0; }
API int cudnnCreate(void** h) { *h = &dnnToken; return 0; }
API int cudnnDestroy(void*) { return 0; }
API int cudnnSetStream(void*, void*) { return 0; }
API int cudnnCreateTensorDescriptor(Desc** d) { *d = new Desc{1}; return 0; }
API int cudnnDestroyTensorDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetTensor4dDescriptor(Desc* d, int format, int type, int n, int c, int h, int w) { if (format != 0 || type > 1) return 3; d->type = type; d->n = n; d->c = c; d->h = h; d->w = w; return 0; }
API int cudnnCreateFilterDescriptor(Desc** d) { *d = new Desc{2}; return 0; }
API int cudnnDestroyFilterDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetFilter4dDescriptor(Desc* d, int type, int format, int k, int c, int h, int w) { if (format != 0 || type > 1) return 3; d->type = type; d->n = k; d->c = c; d->h = h; d->w = w; return 0; }
API int cudnnCreateConvolutionDescriptor(Desc** d) { *d = new Desc{3}; return 0; }
API int cudnnDestroyConvolutionDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetConvolution2dDescriptor(Desc* d, int ph, int pw, int u, int v, int dh, int dw, int mode, int type) { d->pad_h = ph; d->pad_w = pw; d->u = u; d->v = v; d->dil_h = dh; d->dil_w = dw; d->mode = mode; d->type = type; return 0; }
API int cudnnSetConvolutionMathType(Desc* d, int m) { d->math = m; return 0; }
API int cudnnGetConvolution2dForwardOutputDim(Desc* cd, Desc* x, Desc* w, int* n, int* c, int* h, int* wo) {
    *n = x->n; *c = w->n; *h = (x->h + 2 * cd->pad_h - cd->dil_h * (w->h - 1) - 1) / cd->u + 1; *wo = (x->w + 2 * cd->pad_w - cd->dil_w * (w->w - 1) - 1) / cd->v + 1; return 0; }
struct Perf { int algo, status; float time; size_t memory; int determinism, mathType, r[3]; };
static_assert(sizeof(Perf) == 48);
static int findOne(int* returned, Perf* p, Desc* cd) { *returned = 1; p[0] = Perf{1, 0, 0.1f, 0, 1, cd->math, {0, 0, 0}}; return 0; }
API int cudnnFindConvolutionForwardAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnFindConvolutionBackwardDataAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnFindConvolutionBackwardFilterAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnGetConvolutionForwardWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 1024; return 0; }
API int cudnnGetConvolutionBackwardDataWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 2048; return 0; }
API int cudnnGetConvolutionBackwardFilterWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 0; return 0; }
// dir 0: y = conv(x, w); 1: dx = convT(dy, w); 2: dw = corr(x, dy). Cross-correlation, stride 1. Tap by tap over
// whole output rows, so the inner loop runs over contiguous memory (the compiler vectorises it). Sums are kept in
// double for either type: long sequential float sums would be far less accurate than cuDNN's blocked ones.
template <typename T>
static void conv(int dir, Desc* xd, T* x, Desc* wd, T* w, Desc* cd, Desc* yd, T* y, T alpha, T beta) {
    int N = xd->n, C = xd->c, H = xd->h, W = xd->w, K = wd->n, R = wd->h, S = wd->w, Ho = yd->h, Wo = yd->w;
    std::vector<double> acc(dir == 0 ? (size_t)N*K*Ho*Wo : dir == 1 ? (size_t)N*C*H*W : (size_t)K*C*R*S, 0);
    for (int n = 0; n < N; n++) for (int k = 0; k < K; k++) for (int c = 0; c < C; c++) for (int p = 0; p < R; p++) for (int q = 0; q < S; q++) {
        int dh = p * cd->dil_h - cd->pad_h, dw = q * cd->dil_w - cd->pad_w;
        int i0 = std::max(0, -dh), i1 = std::min(Ho, H - dh), j0 = std::max(0, -dw), j1 = std::min(Wo, W - dw);
        size_t wi = ((size_t)(k*C+c)*R+p)*S+q;
        double tap = dir == 2 ? 0.0 : (double)w[wi], dot = 0;
        for (int i = i0; i < i1; i++) {
            size_t xr = ((size_t)(n*C+c)*H+i+dh)*W+dw, yr = ((size_t)(n*K+k)*Ho+i)*Wo;
            if (dir == 0) for (int j = j0; j < j1; j++) acc[yr+j] += (double)x[xr+j] * tap;
            else if (dir == 1) for (int j = j0; j < j1; j++) acc[xr+j] += (double)y[yr+j] * tap;
            else for (int j = j0; j < j1; j++) dot += (double)x[xr+j] * (double)y[yr+j];
        }
        if (dir == 2) acc[wi] += dot; }
    T* out = dir == 0 ? y : dir == 1 ? x : w;
    for (size_t i = 0; i < acc.size(); i++) out[i] = beta == 0 ? alpha * (T)acc[i] : alpha * (T)acc[i] + beta * out[i];
}
static int run(int dir, const void* al, Desc* xd, uint64_t x, Desc* wd, uint64_t w, Desc* cd, Desc* yd, uint64_t y, const void* be, uint64_t ws, size_t wsSize, size_t need) {
    if (wsSize < need || (need && !ws)) { fprintf(stderr, "FAKE: workspace %zu < %zu\n", wsSize, need); return 3; }
    if (cd->mode != 1) { fprintf(stderr, "FAKE: not cross-correlation\n"); return 3; }
    if (skipCompute) return 0;
    if (xd->type == 0) conv<float>(dir, xd, (float*)x, wd, (float*)w, cd, yd, (float*)y, *(const float*)al, *(const float*)be);
    else conv<double>(dir, xd, (double*)x, wd, (double*)w, cd, yd, (double*)y, *(const double*)al, *(const double*)be);
    return 0; }
API int cudnnConvolutionForward(void*, const void* al, Desc* xd, uint64_t x, Desc* wd, uint64_t w, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* yd, uint64_t y) { return run(0, al, xd, x, wd, w, cd, yd, y, be, ws, wss, 1024); }
API int cudnnConvolutionBackwardData(void*, const void* al, Desc* wd, uint64_t w, Desc* yd, uint64_t dy, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* xd, uint64_t dx) { return run(1, al, xd, dx, wd, w, cd, yd, dy, be, ws, wss, 2048); }
API int cudnnConvolutionBackwardFilter(void*, const void* al, Desc* xd, uint64_t x, Desc* yd, uint64_t dy, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* wd, uint64_t dw) { return run(2, al, xd, x, wd, dw, cd, yd, dy, be, ws, wss, 0); }
