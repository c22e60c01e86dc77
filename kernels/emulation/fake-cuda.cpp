// A CPU stand-in for libcuda, libnvrtc, libcublas and libcudnn: just enough of each API for the CUDA
// backend's Gpu tests to run without a GPU (see run-gpu-tests-on-cpu.sh). Device memory is host memory; kernels
// are the real kernels/*.cu compiled as host C++ (emu.h); cuBLAS and cuDNN are naive reference loops. Stream capture
// is real: captured work is recorded, not run, and runs at each cuGraphLaunch (see "stream capture" below).
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
#include <tuple>
#include <algorithm>

using Invoker = void (*)(void**);
template <typename... A, size_t... I>
static void call(void (*f)(A...), void** args, std::index_sequence<I...>) { f(*reinterpret_cast<std::remove_cv_t<A>*>(args[I])...); }
// A kernel's arguments copied out of cuLaunchKernel's kernelParams (pointers to the caller's values, valid only
// during the call), for a launch recorded into a graph.
template <typename... A, size_t... I>
static std::function<void()> bound(void (*f)(A...), void** args, std::index_sequence<I...>) {
    std::tuple<std::remove_cv_t<A>...> values{*reinterpret_cast<std::remove_cv_t<A>*>(args[I])...};
    return [f, values] { std::apply(f, values); }; }
// invoke: one thread of the kernel on kernelParams; bind: the same on copies of them, for later.
struct Kernel { std::function<void(void**)> invoke; std::function<std::function<void()>(void**)> bind; };
struct Entry { const char* name; Kernel kernel; bool sync; };
template <typename... A> static Kernel make(void (*f)(A...)) {
    return { [f](void** a) { call(f, a, std::index_sequence_for<A...>{}); },
             [f](void** a) { return bound(f, a, std::index_sequence_for<A...>{}); } }; }
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
// ---------------- stream capture ----------------
// Between cuStreamBeginCapture and cuStreamEndCapture, work queued on the stream is recorded into the graph instead of
// run: each node keeps copies of everything it reads when it runs (kernel arguments, alpha and beta, descriptors),
// since the caller's pointers are valid only during the call and its descriptors may be destroyed before the graph
// runs; arguments are checked when recorded, as the driver does. cuGraphLaunch runs the nodes in order. Operations a
// capture cannot hold (allocation, free, host waits, host copies) fail with the driver's codes and invalidate the
// capture. The graph being captured is shared by the copies of this library (fake-clock.c), so cuBLAS and cuDNN
// calls land in libcuda's graph.
struct FakeGraph { std::vector<std::function<int()>> nodes; bool invalidated = false; };
struct FakeExec { std::vector<std::function<int()>> nodes; };
extern "C" void* fake_capture;
enum { CUDA_ERROR_ILLEGAL_STATE = 401, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900, CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901 };
static FakeGraph* capturing() { return (FakeGraph*)__atomic_load_n(&fake_capture, __ATOMIC_ACQUIRE); }
// 0, or the error of an operation a capture cannot hold (the capture is then invalid, as on a device).
static int refuseWhileCapturing(const char* what) {
    FakeGraph* g = capturing();
    if (!g) return 0;
    fprintf(stderr, "FAKE: %s during stream capture\n", what);
    g->invalidated = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; }
// Runs work now, or records it as the capture's next node.
static int submit(std::function<int()> work) {
    FakeGraph* g = capturing();
    if (!g) return work();
    if (g->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    g->nodes.push_back(std::move(work));
    return 0; }
// ---------------- driver ----------------
API int cuInit(unsigned) { return 0; }
API int cuDriverGetVersion(int* v) { *v = 12080; return 0; }
static const char* errName = "CUDA_ERROR_FAKE";
API int cuGetErrorName(int e, const char** s) {
    *s = e == 2 ? "CUDA_ERROR_OUT_OF_MEMORY" : e == 1 ? "CUDA_ERROR_INVALID_VALUE" : e == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ? "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"
       : e == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ? "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED" : e == CUDA_ERROR_ILLEGAL_STATE ? "CUDA_ERROR_ILLEGAL_STATE" : errName;
    return 0; }
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
API int cuCtxSynchronize() { return refuseWhileCapturing("cuCtxSynchronize"); }
static int streamToken;
API int cuStreamCreate(void** s, unsigned) { *s = &streamToken; return 0; }
API int cuStreamDestroy_v2(void*) { return 0; }
API int cuStreamSynchronize(void*) { return refuseWhileCapturing("cuStreamSynchronize"); }
static std::map<uint64_t, size_t> live;
static size_t liveBytes;
API int cuMemAlloc_v2(uint64_t* p, size_t n) {
    if (int r = refuseWhileCapturing("cuMemAlloc_v2")) return r;
    if (n > (16ull << 30)) return 2;
    void* m = aligned_alloc(256, (n + 255) / 256 * 256); if (!m) return 2;
    memset(m, 0xCD, n); *p = (uint64_t)m; live[*p] = n; liveBytes += n; return 0; }
API int cuMemFree_v2(uint64_t p) { if (int r = refuseWhileCapturing("cuMemFree_v2")) return r; auto it = live.find(p); if (it == live.end()) { fprintf(stderr, "FAKE: free of unknown %llx\n", (unsigned long long)p); return 1; } liveBytes -= it->second; live.erase(it); free((void*)p); return 0; }
API int cuMemAllocHost_v2(void** p, size_t n) { if (int r = refuseWhileCapturing("cuMemAllocHost_v2")) return r; *p = aligned_alloc(64, (n + 63) / 64 * 64); return *p ? 0 : 2; }
API int cuMemFreeHost(void* p) { if (int r = refuseWhileCapturing("cuMemFreeHost")) return r; free(p); return 0; }
API int cuMemGetInfo_v2(size_t* f, size_t* t) { *t = 16ull << 30; *f = *t - liveBytes; return 0; }
static bool valid(uint64_t p, size_t n) {
    auto it = live.upper_bound(p); if (it == live.begin()) return false; --it;
    return p >= it->first && p + n <= it->first + it->second; }
// Host copies: legal in a capture only from page-locked memory, which the stand-in does not model, so refused there.
API int cuMemcpyHtoDAsync_v2(uint64_t d, const void* s, size_t n, void*) { if (int r = refuseWhileCapturing("cuMemcpyHtoDAsync_v2 (pageable host memory)")) return r; if (!valid(d, n)) { fprintf(stderr, "FAKE: HtoD out of bounds\n"); return 1; } memcpy((void*)d, s, n); return 0; }
API int cuMemcpyDtoHAsync_v2(void* d, uint64_t s, size_t n, void*) { if (int r = refuseWhileCapturing("cuMemcpyDtoHAsync_v2 (pageable host memory)")) return r; if (!valid(s, n)) { fprintf(stderr, "FAKE: DtoH out of bounds\n"); return 1; } memcpy(d, (void*)s, n); return 0; }
API int cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void*) { if (!valid(s, n) || !valid(d, n)) return 1; return submit([=] { memmove((void*)d, (void*)s, n); return 0; }); }
API int cuMemsetD32Async(uint64_t d, unsigned v, size_t n, void*) { if (!valid(d, n * 4)) { fprintf(stderr, "FAKE: memset out of bounds\n"); return 1; }
    return submit([=] { for (size_t i = 0; i < n; i++) ((unsigned*)d)[i] = v; return 0; }); }
API int cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void*) { return submit([=] { memset((void*)d, v, n); return 0; }); }
// Events read the host clock: launches run synchronously, so host time is device time here. Simulated costs (the
// graph API's engines below) are added as virtual time, kept in one place for every copy of this library (fake-clock.c).
using Clock = std::chrono::steady_clock;
extern "C" long long fake_virtual_ns;
static Clock::time_point now() { return Clock::now() + std::chrono::nanoseconds(__atomic_load_n(&fake_virtual_ns, __ATOMIC_RELAXED)); }
API int cuEventCreate(Clock::time_point** e, unsigned) { *e = new Clock::time_point(now()); return 0; }
API int cuEventDestroy_v2(Clock::time_point* e) { delete e; return 0; }
API int cuEventRecord(Clock::time_point* e, void*) { return submit([e] { *e = now(); return 0; }); }
API int cuEventSynchronize(Clock::time_point*) { return refuseWhileCapturing("cuEventSynchronize"); }
API int cuEventQuery(Clock::time_point*) { return refuseWhileCapturing("cuEventQuery"); }   // outside a capture every recorded event is reached
API int cuStreamWaitEvent(void*, Clock::time_point*, unsigned) { return 0; }   // one stream runs everything in order
API int cuEventElapsedTime(float* ms, Clock::time_point* a, Clock::time_point* b) { *ms = std::chrono::duration<float, std::milli>(*b - *a).count(); return 0; }
static int moduleToken;
API int cuModuleLoadData(void** m, const void*) { if (int r = refuseWhileCapturing("cuModuleLoadData")) return r; *m = &moduleToken; return 0; }
API int cuModuleUnload(void*) { return 0; }
API int cuModuleGetFunction(void** f, void*, const char* name) {
    for (auto& e : registry()) if (strcmp(e.name, name) == 0) { *f = &e; return 0; }
    fprintf(stderr, "FAKE: no kernel %s\n", name); return 500; }
API int cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void*, void** args, void**) {
    auto* e = (Entry*)f;
    if (gx == 0 || gy == 0 || gy > 65535 || gz != 1 || bx == 0 || bx > 1024 || by != 1 || bz != 1 || shared != 0) { fprintf(stderr, "FAKE: bad launch of %s\n", e->name); return 1; }
    if (skipCompute) return 0;
    // thread: one CUDA thread of the kernel, on the caller's arguments now or on copies of them in a graph.
    auto run = [=](const std::function<void()>& thread) {
        if (e->sync) launch(gx, gy, bx, thread);
        else {
            gridDim = {gx, gy, 1}; blockDim = {bx, 1, 1};
            for (unsigned y = 0; y < gy; y++) for (unsigned b = 0; b < gx; b++) for (unsigned t = 0; t < bx; t++) { blockIdx = {b, y, 0}; threadIdx = {t, 0, 0}; thread(); }
        }
        return 0; };
    if (capturing()) return submit([run, thread = e->kernel.bind(args)] { return run(thread); });
    return run([&] { e->kernel.invoke(args); }); }
API int cuStreamBeginCapture_v2(void*, int) {
    if (capturing()) return CUDA_ERROR_ILLEGAL_STATE;
    __atomic_store_n(&fake_capture, (void*)new FakeGraph, __ATOMIC_RELEASE); return 0; }
API int cuStreamEndCapture(void*, FakeGraph** graph) {
    FakeGraph* g = capturing();
    *graph = nullptr;
    if (!g) return CUDA_ERROR_ILLEGAL_STATE;
    __atomic_store_n(&fake_capture, (void*)nullptr, __ATOMIC_RELEASE);
    if (g->invalidated) { delete g; return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED; }
    *graph = g; return 0; }
API int cuStreamIsCapturing(void*, int* status) { FakeGraph* g = capturing(); *status = !g ? 0 : g->invalidated ? 2 : 1; return 0; }
API int cuGraphInstantiateWithFlags(FakeExec** exec, FakeGraph* g, unsigned long long) { if (!g) return 1; *exec = new FakeExec{g->nodes}; return 0; }
API int cuGraphLaunch(FakeExec* exec, void*) {
    if (int r = refuseWhileCapturing("cuGraphLaunch")) return r;
    for (size_t i = 0; i < exec->nodes.size(); i++)
        if (int r = exec->nodes[i]()) { fprintf(stderr, "FAKE: graph node %zu of %zu failed (%d)\n", i, exec->nodes.size(), r); return r; }
    return 0; }
API int cuGraphExecDestroy(FakeExec* exec) { delete exec; return 0; }
API int cuGraphDestroy(FakeGraph* g) { delete g; return 0; }
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
// alpha and beta are read when the call is made (host pointer mode), so a captured GEMM keeps their values.
template <typename T>
static int gemm(int ta, int tb, int m, int n, int k, const T* al, const T* A, int lda, const T* B, int ldb, const T* be, T* C, int ldc) {
    if (lda < (ta ? k : m) || ldb < (tb ? n : k) || ldc < m) { fprintf(stderr, "FAKE: bad leading dimension\n"); return 7; }
    if (skipCompute) return 0;
    T alpha = *al, beta = *be;
    return submit([=] {
        for (int j = 0; j < n; j++) for (int i = 0; i < m; i++) {
            T s = 0; for (int p = 0; p < k; p++) { T a = ta ? A[p + i * lda] : A[i + p * lda]; T b = tb ? B[j + p * ldb] : B[p + j * ldb]; s += a * b; }
            C[i + j * ldc] = beta == 0 ? alpha * s : alpha * s + beta * C[i + j * ldc]; }
        return 0; }); }
API int cublasSgemm_v2(void*, int ta, int tb, int m, int n, int k, const float* al, uint64_t A, int lda, uint64_t B, int ldb, const float* be, uint64_t C, int ldc) { return gemm(ta, tb, m, n, k, al, (float*)A, lda, (float*)B, ldb, be, (float*)C, ldc); }
API int cublasDgemm_v2(void*, int ta, int tb, int m, int n, int k, const double* al, uint64_t A, int lda, uint64_t B, int ldb, const double* be, uint64_t C, int ldc) { return gemm(ta, tb, m, n, k, al, (double*)A, lda, (double*)B, ldb, be, (double*)C, ldc); }
// ---------------- cuDNN ----------------
struct Desc { int kind, type = -1, n, c, h, w, pad_h, pad_w, u, v, dil_h, dil_w, mode, math, format = 0; };
static int dnnToken;
API size_t cudnnGetVersion() { return 90100; }
API const char* cudnnGetErrorString(int) { return "CUDNN_STATUS_FAKE"; }
API void cudnnGetLastErrorString(char* m, size_t n) { if (n) m[0] = 0; }
API int cudnnCreate(void** h) { *h = &dnnToken; return 0; }
API int cudnnDestroy(void*) { return 0; }
API int cudnnSetStream(void*, void*) { return 0; }
API int cudnnCreateTensorDescriptor(Desc** d) { *d = new Desc{1}; return 0; }
API int cudnnDestroyTensorDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetTensor4dDescriptor(Desc* d, int format, int type, int n, int c, int h, int w) { if (format > 1 || type > 1) return 3; d->format = format; d->type = type; d->n = n; d->c = c; d->h = h; d->w = w; return 0; }
API int cudnnCreateFilterDescriptor(Desc** d) { *d = new Desc{2}; return 0; }
API int cudnnDestroyFilterDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetFilter4dDescriptor(Desc* d, int type, int format, int k, int c, int h, int w) { if (format > 1 || type > 1) return 3; d->format = format; d->type = type; d->n = k; d->c = c; d->h = h; d->w = w; return 0; }
API int cudnnCreateConvolutionDescriptor(Desc** d) { *d = new Desc{3}; return 0; }
API int cudnnDestroyConvolutionDescriptor(Desc* d) { delete d; return 0; }
API int cudnnSetConvolution2dDescriptor(Desc* d, int ph, int pw, int u, int v, int dh, int dw, int mode, int type) { d->pad_h = ph; d->pad_w = pw; d->u = u; d->v = v; d->dil_h = dh; d->dil_w = dw; d->mode = mode; d->type = type; return 0; }
API int cudnnSetConvolutionMathType(Desc* d, int m) { d->math = m; return 0; }
API int cudnnGetConvolution2dForwardOutputDim(Desc* cd, Desc* x, Desc* w, int* n, int* c, int* h, int* wo) {
    *n = x->n; *c = w->n; *h = (x->h + 2 * cd->pad_h - cd->dil_h * (w->h - 1) - 1) / cd->u + 1; *wo = (x->w + 2 * cd->pad_w - cd->dil_w * (w->w - 1) - 1) / cd->v + 1; return 0; }
struct Perf { int algo, status; float time; size_t memory; int determinism, mathType, r[3]; };
static_assert(sizeof(Perf) == 48);
static int findOne(int* returned, Perf* p, Desc* cd) {
    if (int r = refuseWhileCapturing("cudnnFind*AlgorithmEx (it times candidates and waits for them)")) return r;
    *returned = 1; p[0] = Perf{1, 0, 0.1f, 0, 1, cd->math, {0, 0, 0}}; return 0; }
API int cudnnFindConvolutionForwardAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnFindConvolutionBackwardDataAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnFindConvolutionBackwardFilterAlgorithmEx(void*, Desc*, uint64_t, Desc*, uint64_t, Desc* cd, Desc*, uint64_t, int, int* r, Perf* p, uint64_t, size_t) { return findOne(r, p, cd); }
API int cudnnGetConvolutionForwardWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 1024; return 0; }
API int cudnnGetConvolutionBackwardDataWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 2048; return 0; }
API int cudnnGetConvolutionBackwardFilterWorkspaceSize(void*, Desc*, Desc*, Desc*, Desc*, int, size_t* s) { *s = 0; return 0; }
// Memory offset of (a, b, r, c) in a 4-D descriptor: NCHW (format 0) or NHWC / KRSC (format 1).
static size_t at4(const Desc* d, int a, int b, int r, int c) {
    return d->format ? (((size_t)a * d->h + r) * d->w + c) * d->c + b : (((size_t)a * d->c + b) * d->h + r) * d->w + c; }
// dir 0: y = conv(x, w); 1: dx = convT(dy, w); 2: dw = corr(x, dy). Cross-correlation, stride 1. NCHW: tap by tap over
// whole output rows, so the inner loop runs over contiguous memory (the compiler vectorises it); channels-last: element
// by element through each descriptor's offsets. acc follows the output's memory order either way. Sums are kept in
// double for either type: long sequential float sums would be far less accurate than cuDNN's blocked ones.
template <typename T>
static void conv(int dir, Desc* xd, T* x, Desc* wd, T* w, Desc* cd, Desc* yd, T* y, T alpha, T beta) {
    int N = xd->n, C = xd->c, H = xd->h, W = xd->w, K = wd->n, R = wd->h, S = wd->w, Ho = yd->h, Wo = yd->w;
    std::vector<double> acc(dir == 0 ? (size_t)N*K*Ho*Wo : dir == 1 ? (size_t)N*C*H*W : (size_t)K*C*R*S, 0);
    if (xd->format || wd->format || yd->format) {
        for (int n = 0; n < N; n++) for (int k = 0; k < K; k++) for (int i = 0; i < Ho; i++) for (int j = 0; j < Wo; j++)
            for (int c = 0; c < C; c++) for (int p = 0; p < R; p++) for (int q = 0; q < S; q++) {
                int hi = i + p * cd->dil_h - cd->pad_h, wi = j + q * cd->dil_w - cd->pad_w;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                size_t xi = at4(xd, n, c, hi, wi), wi_ = at4(wd, k, c, p, q), yi = at4(yd, n, k, i, j);
                if (dir == 0) acc[yi] += (double)x[xi] * w[wi_]; else if (dir == 1) acc[xi] += (double)y[yi] * w[wi_]; else acc[wi_] += (double)x[xi] * y[yi]; }
    } else
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
    // Copies of the descriptors and scalars: a captured call runs after the caller may have destroyed them.
    Desc X = *xd, Wd = *wd, C = *cd, Y = *yd;
    bool f32 = xd->type == 0;
    double alpha = f32 ? *(const float*)al : *(const double*)al, beta = f32 ? *(const float*)be : *(const double*)be;
    return submit([=]() mutable {
        if (f32) conv<float>(dir, &X, (float*)x, &Wd, (float*)w, &C, &Y, (float*)y, (float)alpha, (float)beta);
        else conv<double>(dir, &X, (double*)x, &Wd, (double*)w, &C, &Y, (double*)y, alpha, beta);
        return 0; }); }
API int cudnnConvolutionForward(void*, const void* al, Desc* xd, uint64_t x, Desc* wd, uint64_t w, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* yd, uint64_t y) { return run(0, al, xd, x, wd, w, cd, yd, y, be, ws, wss, 1024); }
API int cudnnConvolutionBackwardData(void*, const void* al, Desc* wd, uint64_t w, Desc* yd, uint64_t dy, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* xd, uint64_t dx) { return run(1, al, xd, dx, wd, w, cd, yd, dy, be, ws, wss, 2048); }
API int cudnnConvolutionBackwardFilter(void*, const void* al, Desc* xd, uint64_t x, Desc* yd, uint64_t dy, Desc* cd, int, uint64_t ws, size_t wss, const void* be, Desc* wd, uint64_t dw) { return run(2, al, xd, x, wd, dw, cd, yd, dy, be, ws, wss, 0); }
// ---------------- cuDNN graph API ----------------
// Descriptors keep their attributes as raw bytes and check at finalize that what cuDNN requires was set. The
// heuristics propose a fixed table of engines whose numerical notes, workspace, knobs and speed differ, so the
// backend's filtering, timing and remembered choices are observable: engine 1 (tensor cores) rounds float inputs
// to TF32 as the hardware does, so an exact-float32 parity test fails if such an engine is ever admitted. Engine 6
// alone takes graphs of more than one operation (fused passes) and interprets them (see "engine 6" below).
struct GDesc {
    int type; bool final = false;
    std::map<int, std::pair<int, std::vector<char>>> attrs;
    int engine = -1; GDesc* graph = nullptr; std::vector<std::pair<int, long long>> knobs; long long workspace = 0;
    bool has(int a) const { return attrs.count(a) != 0; }
    template <typename T> T get(int a, int i = 0) const { T v; memcpy(&v, attrs.at(a).second.data() + i * sizeof(T), sizeof(T)); return v; }
    int count(int a) const { auto& p = attrs.at(a); return (int)(p.second.size() / attrSize(p.first)); }
    static size_t attrSize(int t) { switch (t) { case 0: case 3: case 5: case 6: case 15: return 8; case 2: return 1; default: return 4; } }
};
// delayUs: simulated run time, added to the events' virtual clock (no real waiting), large enough that host noise never reorders them.
struct FakeEngine { std::vector<int> notes; long long workspace; int delayUs; bool plans; int knobType; long long knobValue; };
static const FakeEngine fakeEngines[] = {
    {{}, 0, 30000, true, -1, 0},     // 0: direct, deterministic, slowest
    {{0}, 4096, 1000, true, 2, 3},   // 1: TENSOR_CORE (TF32 for float), fastest single-op engine, knob TILE_SIZE = 3
    {{4}, 1024, 10000, true, -1, 0}, // 2: NONDETERMINISTIC
    {{}, 0, 0, false, -1, 0},        // 3: refuses to build a plan
    {{5}, 0, 5000, true, -1, 0},     // 4: WINOGRAD
    {{1}, 0, 0, true, -1, 0},        // 5: DOWN_CONVERT_INPUTS
    {{}, 0, 0, true, -1, 0},         // 6: fused graphs only (float or double real tensors), faster than engine 1, the fastest admissible single-op one
};
static const std::vector<int> heurA = {1, 2, 0, 3}, heurFallback = {0, 4, 5}, heurFused = {6};
enum { G_POINTWISE = 0, G_OP_POINTWISE = 13, G_GEN_STATS = 14, G_REDUCTION = 21, G_OP_REDUCTION = 22, G_CONV = 1, G_ENGINE = 2, G_CFG = 3, G_HEUR = 4, G_PLAN = 5, G_KNOB = 7, G_FWD = 10, G_BWD_FILTER = 11, G_BWD_DATA = 12, G_GRAPH = 15, G_PACK = 16, G_TENSOR = 17 };
static const int BAD_PARAM = 2000, NOT_SUPPORTED = 3000;
API int cudnnBackendCreateDescriptor(int type, GDesc** d) { *d = new GDesc{type}; return 0; }
API int cudnnBackendDestroyDescriptor(GDesc* d) { delete d; return 0; }
API int cudnnBackendSetAttribute(GDesc* d, int name, int type, long long n, const void* v) {
    if (d->final) { fprintf(stderr, "FAKE: attribute %d set after finalize\n", name); return BAD_PARAM; }
    if (n < 0 || (n > 0 && !v)) return BAD_PARAM;
    auto& a = d->attrs[name]; a.first = type; a.second.assign((const char*)v, (const char*)v + n * GDesc::attrSize(type)); return 0; }
static GDesc* descAttr(const GDesc* d, int a, int i = 0) { return d->get<GDesc*>(a, i); }
// The op's (x, w, y) attribute names in graph terms: x is dx and y is dy for backward data, w is dw for backward filter.
static void opNames(int type, int& x, int& w, int& y, int& conv, int& alpha, int& beta) {
    if (type == G_FWD) { x = 704; w = 703; y = 705; conv = 702; alpha = 700; beta = 701; }
    else if (type == G_BWD_DATA) { x = 710; w = 709; y = 711; conv = 708; alpha = 706; beta = 707; }
    else { x = 716; w = 715; y = 717; conv = 714; alpha = 712; beta = 713; } }
static int fusedPlan(const GDesc* graph);
API int cudnnBackendFinalize(GDesc* d) {
    auto need = [&](std::initializer_list<int> names) { for (int a : names) if (!d->has(a)) { fprintf(stderr, "FAKE: descriptor %d lacks attribute %d\n", d->type, a); return false; } return true; };
    switch (d->type) {
    case G_TENSOR: if (!need({900, 901, 902, 903, 906}) || d->count(902) != 4 || d->count(903) != 4 || d->get<long long>(900) <= 0) return BAD_PARAM; break;
    case G_CONV: if (!need({100, 101, 102, 103, 104, 105, 106}) || d->get<int>(101) != 1) return BAD_PARAM; break;
    case G_FWD: case G_BWD_DATA: case G_BWD_FILTER: { int x, w, y, c, al, be; opNames(d->type, x, w, y, c, al, be); if (!need({x, w, y, c, al, be})) return BAD_PARAM; break; }
    case G_GRAPH: if (!need({800, 801}) || d->count(801) < 1) return BAD_PARAM; break;
    // The operations of fused graphs (pointwise, statistics, reductions): only engine 6 plans a graph of more than one
    // operation. A pointwise backward mode (RELU_BWD) takes dy and writes dx where a forward one takes b and writes y.
    case G_POINTWISE: if (!need({0, 1})) return BAD_PARAM; break;
    case G_OP_POINTWISE: if (!need({750, 751}) || !(d->has(753) || (d->has(756) && d->has(757)))) return BAD_PARAM; break;
    case G_GEN_STATS: if (!need({770, 771, 772, 773, 774})) return BAD_PARAM; break;
    case G_REDUCTION: if (!need({1600, 1601})) return BAD_PARAM; break;
    case G_OP_REDUCTION: if (!need({1610, 1611, 1612})) return BAD_PARAM; break;
    case G_HEUR: if (!need({200, 201})) return BAD_PARAM; d->graph = descAttr(d, 201); break;
    case G_ENGINE: if (!need({1300, 1301}) || d->get<long long>(1301) < 0 || d->get<long long>(1301) >= (long long)std::size(fakeEngines)) return BAD_PARAM;
        d->graph = descAttr(d, 1300); d->engine = (int)d->get<long long>(1301); break;
    case G_KNOB: if (!need({600, 601})) return BAD_PARAM; break;
    case G_CFG: { if (!need({300})) return BAD_PARAM; GDesc* e = descAttr(d, 300); d->engine = e->engine; d->graph = e->graph; d->knobs.clear();
        if (d->has(302)) for (int i = 0; i < d->count(302); i++) { GDesc* k = descAttr(d, 302, i); d->knobs.push_back({k->get<int>(600), k->get<long long>(601)}); } break; }
    case G_PLAN: { if (!need({400, 401})) return BAD_PARAM; GDesc* c = descAttr(d, 401); if (!c->final || c->engine < 0) return BAD_PARAM;
        const FakeEngine& e = fakeEngines[c->engine];
        if (!e.plans) return NOT_SUPPORTED;
        // Engines 0-5 run one convolution, engine 6 only a fused graph.
        if ((c->engine == 6) != (c->graph->count(801) > 1)) return NOT_SUPPORTED;
        if (c->engine == 6) if (int r = fusedPlan(c->graph)) return r;
        if (e.knobType >= 0 && (c->knobs.size() != 1 || c->knobs[0] != std::pair<int, long long>{e.knobType, e.knobValue})) return NOT_SUPPORTED;
        d->engine = c->engine; d->graph = c->graph; d->workspace = e.workspace; break; }
    case G_PACK: if (!need({1000, 1001, 1003}) || d->count(1000) != d->count(1001)) return BAD_PARAM; break;
    default: return NOT_SUPPORTED; }
    d->final = true; return 0; }
API int cudnnBackendGetAttribute(GDesc* d, int name, int type, long long requested, long long* count, void* out) {
    if (!d->final) return 2004;  // CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED
    auto give = [&](auto values) {  // values: std::vector of the element type
        *count = (long long)values.size();
        if (out) for (long long i = 0; i < std::min<long long>(requested, values.size()); i++) ((decltype(values.data()))out)[i] = values[i];
        return 0; };
    auto fill = [&](int n, auto&& with) {  // caller-created descriptors receive the content
        *count = n; if (!out) return 0;
        for (long long i = 0; i < std::min<long long>(requested, n); i++) { GDesc* t = ((GDesc**)out)[i]; with(t, (int)i); t->final = true; }
        return 0; };
    if (d->type == G_HEUR && name == 202) {
        // A fused graph gets engine 6 in every mode: one list, so a caller merging the modes sees it once.
        const auto& list = d->graph->count(801) > 1 ? heurFused : d->get<int>(200) == 2 ? heurFallback : heurA;
        return fill((int)list.size(), [&](GDesc* t, int i) { if (t->type != G_CFG) return; t->engine = list[i]; t->graph = d->graph;
            const FakeEngine& e = fakeEngines[list[i]]; t->knobs.clear(); if (e.knobType >= 0) t->knobs.push_back({e.knobType, e.knobValue}); }); }
    if (d->type == G_CFG && name == 300) return fill(1, [&](GDesc* t, int) { t->engine = d->engine; t->graph = d->graph; });
    if (d->type == G_CFG && name == 302) return fill((int)d->knobs.size(), [&](GDesc* t, int i) {
        t->attrs[600] = {9, std::vector<char>((char*)&d->knobs[i].first, (char*)&d->knobs[i].first + 4)};
        t->attrs[601] = {3, std::vector<char>((char*)&d->knobs[i].second, (char*)&d->knobs[i].second + 8)}; });
    if (d->type == G_ENGINE && name == 1301) return give(std::vector<long long>{d->engine});
    if (d->type == G_ENGINE && name == 1303) return give(fakeEngines[d->engine].notes);
    if (d->type == G_PLAN && name == 402) return give(std::vector<long long>{d->workspace});
    if (d->type == G_KNOB && name == 600) return give(std::vector<int>{d->get<int>(600)});
    if (d->type == G_KNOB && name == 601) return give(std::vector<long long>{d->get<long long>(601)});
    fprintf(stderr, "FAKE: attribute %d of descriptor %d not readable here\n", name, d->type); return NOT_SUPPORTED; }
struct Strided { long long d[4], s[4]; long long at(long long n, long long c, long long h, long long w) const { return n * s[0] + c * s[1] + h * s[2] + w * s[3]; }
    long long extent() const { long long e = 1; for (int i = 0; i < 4; i++) e += (d[i] - 1) * s[i]; return e; } };
static Strided strided(const GDesc* t) { Strided r; for (int i = 0; i < 4; i++) { r.d[i] = t->get<long long>(902, i); r.s[i] = t->get<long long>(903, i); } return r; }
static float tf32(float v) { uint32_t b; memcpy(&b, &v, 4); if ((b & 0x7f800000u) != 0x7f800000u) b = (b + 0xfffu + ((b >> 13) & 1u)) & ~0x1fffu; memcpy(&v, &b, 4); return v; }
// dir as in conv() above, on tensors addressed through their strides (NCHW or channels-last alike): gathered into
// NCHW copies (inputs rounded to TF32 for a tensor-core engine on float data), convolved by conv() (row-wise, double
// sums), and the result scattered back into the output's own layout.
template <typename T>
static std::vector<T> gather(const Strided& S, const T* p, bool roundTf32) {
    std::vector<T> out((size_t)(S.d[0] * S.d[1] * S.d[2] * S.d[3]));
    size_t i = 0;
    for (long long a = 0; a < S.d[0]; a++) for (long long b = 0; b < S.d[1]; b++) for (long long c = 0; c < S.d[2]; c++) for (long long e = 0; e < S.d[3]; e++) {
        T v = p[S.at(a, b, c, e)];
        if constexpr (std::is_same_v<T, float>) if (roundTf32) v = tf32(v);
        out[i++] = v; }
    return out; }
static Desc nchw(const Strided& S, int kind) { Desc d{kind}; d.n = (int)S.d[0]; d.c = (int)S.d[1]; d.h = (int)S.d[2]; d.w = (int)S.d[3]; return d; }
template <typename T>
static void gconv(int dir, const Strided& X, T* x, const Strided& Wt, T* w, const Strided& Y, T* y, int dil, int pad, T alpha, T beta, bool roundTf32) {
    // The output is gathered too, so beta != 0 reads its old values.
    auto xs = gather(X, x, dir != 1 && roundTf32), ws = gather(Wt, w, dir != 2 && roundTf32), ys = gather(Y, y, dir != 0 && roundTf32);
    Desc xd = nchw(X, 1), wd = nchw(Wt, 2), yd = nchw(Y, 1), cd{3};
    cd.pad_h = cd.pad_w = pad; cd.dil_h = cd.dil_w = dil; cd.u = cd.v = 1;
    conv<T>(dir, &xd, xs.data(), &wd, ws.data(), &cd, &yd, ys.data(), alpha, beta);
    const Strided& O = dir == 0 ? Y : dir == 1 ? X : Wt;
    const std::vector<T>& result = dir == 0 ? ys : dir == 1 ? xs : ws;
    T* out = dir == 0 ? y : dir == 1 ? x : w;
    size_t i = 0;
    for (long long a = 0; a < O.d[0]; a++) for (long long b = 0; b < O.d[1]; b++) for (long long c = 0; c < O.d[2]; c++) for (long long e = 0; e < O.d[3]; e++)
        out[O.at(a, b, c, e)] = result[i++]; }
// ---------------- engine 6: fused graphs, interpreted ----------------
// The graph's operations run one after another in double on dense NCHW copies of their tensors, keyed by uid: real
// tensors are gathered from the variant pack's memory through their strides (and results written back the same way),
// virtual ones live only here. A chain of pointwise operations stays in double, as a fused kernel keeps it in registers
// (x·scale + shift is then the one rounding of an fma, as the backend's own kernels compute it), and is rounded to the
// convolution's type where a convolution reads it; every real result is rounded to its tensor's type as it is stored. A
// fused graph then computes what the separate passes it stands for would.
struct FTensor { int type; bool isVirtual; long long align; Strided S; size_t size() const { return (size_t)(S.d[0] * S.d[1] * S.d[2] * S.d[3]); } };
// t: pointwise x, b (or -1), y (RELU_BWD: x, dy, dx); a convolution's x, w, y as opNames() names them; statistics x,
// sum, sqsum; a reduction x, y.
struct FOp { int kind, mode = 0, dil = 1, pad = 0; double alpha = 1, beta = 0; long long t[3] = {-1, -1, -1};
    std::vector<long long> inputs() const {
        if (kind == G_OP_POINTWISE) return t[1] < 0 ? std::vector<long long>{t[0]} : std::vector<long long>{t[0], t[1]};
        if (kind == G_GEN_STATS || kind == G_OP_REDUCTION) return {t[0]};
        return kind == G_FWD ? std::vector<long long>{t[0], t[1]} : kind == G_BWD_DATA ? std::vector<long long>{t[1], t[2]} : std::vector<long long>{t[0], t[2]}; }
    std::vector<long long> outputs() const {
        if (kind == G_GEN_STATS) return {t[1], t[2]};
        if (kind == G_OP_REDUCTION) return {t[1]};
        return {t[kind == G_BWD_DATA ? 0 : kind == G_BWD_FILTER ? 1 : 2]}; } };
struct FProgram { std::map<long long, FTensor> tensors; std::vector<FOp> ops; };
// Reads and checks a graph into a program whose operations are ordered so that each one's inputs are made first.
static int fusedProgram(const GDesc* graph, FProgram& p) {
    int status = 0;
    auto bad = [&](const char* what, long long v) { fprintf(stderr, "FAKE: fused graph: %s (%lld)\n", what, v); status = BAD_PARAM; return -1LL; };
    // A tensor operand's uid, registered on first sight; one uid must always describe the same tensor.
    auto tensor = [&](const GDesc* op, int a) -> long long {
        if (!op->has(a)) return -1;
        const GDesc* t = descAttr(op, a);
        if (!t || t->type != G_TENSOR || !t->final) return bad("operand is not a finalized tensor, attribute", a);
        FTensor f{t->get<int>(901), t->has(907) && t->get<char>(907) != 0, t->get<long long>(900), strided(t)};
        long long id = t->get<long long>(906);
        for (long long d : f.S.d) if (d <= 0) return bad("tensor with an empty dimension, uid", id);
        auto [it, added] = p.tensors.try_emplace(id, f);
        const FTensor& o = it->second;
        if (!added && (o.type != f.type || o.isVirtual != f.isVirtual || !std::equal(o.S.d, o.S.d + 4, f.S.d) || !std::equal(o.S.s, o.S.s + 4, f.S.s)))
            return bad("two different tensors share uid", id);
        return id; };
    auto scalar = [&](const GDesc* op, int a) { int t = op->attrs.at(a).first;
        return t == 4 ? (double)op->get<float>(a) : t == 5 ? op->get<double>(a) : (double)bad("alpha or beta neither float nor double, attribute", a); };
    std::vector<FOp> ops;
    for (int i = 0; i < graph->count(801) && !status; i++) {
        const GDesc* op = descAttr(graph, 801, i);
        FOp f{op->type};
        if (op->type == G_OP_POINTWISE) {
            f.mode = descAttr(op, 750)->get<int>(0);
            if (f.mode == 200) { f.t[0] = tensor(op, 751); f.t[1] = tensor(op, 757); f.t[2] = tensor(op, 756); }
            else { f.t[0] = tensor(op, 751); f.t[1] = tensor(op, 752); f.t[2] = tensor(op, 753); }
        } else if (op->type == G_FWD || op->type == G_BWD_DATA || op->type == G_BWD_FILTER) {
            int x, w, y, c, al, be; opNames(op->type, x, w, y, c, al, be);
            f.t[0] = tensor(op, x); f.t[1] = tensor(op, w); f.t[2] = tensor(op, y);
            const GDesc* cd = descAttr(op, c);
            f.dil = (int)cd->get<long long>(102); f.pad = (int)cd->get<long long>(105);
            // conv() takes one stride-1 geometry for both axes, padded alike on both sides.
            if (cd->count(102) != 2 || cd->count(103) != 2 || cd->count(104) != 2 || cd->count(105) != 2 || cd->get<long long>(102, 1) != f.dil
                || cd->get<long long>(103) != 1 || cd->get<long long>(103, 1) != 1 || cd->get<long long>(105, 1) != f.pad
                || cd->get<long long>(104) != f.pad || cd->get<long long>(104, 1) != f.pad || f.dil < 1 || f.pad < 0) bad("convolution geometry not supported, operation", i);
            f.alpha = scalar(op, al); f.beta = scalar(op, be);
        } else if (op->type == G_GEN_STATS) {
            f.mode = op->get<int>(770);
            if (f.mode != 0) bad("statistics mode is not SUM_SQSUM", f.mode);
            f.t[0] = tensor(op, 772); f.t[1] = tensor(op, 773); f.t[2] = tensor(op, 774);
        } else if (op->type == G_OP_REDUCTION) {
            f.mode = descAttr(op, 1612)->get<int>(1600);
            if (f.mode != 0) bad("reduction operator is not ADD", f.mode);
            f.t[0] = tensor(op, 1610); f.t[1] = tensor(op, 1611);
        } else bad("operation of descriptor type not supported", op->type);
        ops.push_back(f);
    }
    if (status) return status;
    auto same = [&](long long a, long long b) { return std::equal(p.tensors[a].S.d, p.tensors[a].S.d + 4, p.tensors[b].S.d); };
    auto perChannel = [&](long long a, long long of) { const auto& d = p.tensors[a].S.d; return d[0] == 1 && d[1] == p.tensors[of].S.d[1] && d[2] == 1 && d[3] == 1; };
    for (const FOp& f : ops) {
        if (f.kind == G_OP_POINTWISE) {
            if (f.mode != 0 && f.mode != 1 && f.mode != 9 && f.mode != 100 && f.mode != 200) bad("pointwise mode not supported", f.mode);
            else if ((f.mode == 100) != (f.t[1] < 0)) bad(f.mode == 100 ? "RELU_FWD takes no b, mode" : "ADD, MUL, SUB take a b and RELU_BWD a dy, mode", f.mode);
            else if (!same(f.t[0], f.t[2])) bad("pointwise y is not shaped as x, uid", f.t[2]);
            else if (f.mode == 200 && !same(f.t[1], f.t[0])) bad("RELU_BWD dy is not shaped as x, uid", f.t[1]);
            else if (f.t[1] >= 0 && !same(f.t[1], f.t[0]) && !perChannel(f.t[1], f.t[0])) bad("pointwise b neither shaped as x nor [1,C,1,1], uid", f.t[1]);
        } else if (f.kind == G_GEN_STATS) {
            if (!perChannel(f.t[1], f.t[0]) || !perChannel(f.t[2], f.t[0])) bad("statistics sum and sqsum are not [1,C,1,1] of x, uid", f.t[0]);
        } else if (f.kind == G_OP_REDUCTION) {
            if (!perChannel(f.t[1], f.t[0])) bad("reduction y is not [1,C,1,1] of x (the only reduction here), uid", f.t[1]);
        } else {
            const Strided &X = p.tensors[f.t[0]].S, &W = p.tensors[f.t[1]].S, &Y = p.tensors[f.t[2]].S;
            if (Y.d[0] != X.d[0] || W.d[1] != X.d[1] || Y.d[1] != W.d[0] || Y.d[2] != X.d[2] + 2 * f.pad - f.dil * (W.d[2] - 1)
                || Y.d[3] != X.d[3] + 2 * f.pad - f.dil * (W.d[3] - 1)) bad("convolution shapes of x, w, y do not match, y uid", f.t[2]);
            // beta blends into the output's old values, which a virtual tensor does not have.
            if (f.beta != 0 && p.tensors[f.outputs()[0]].isVirtual) bad("convolution with beta into a virtual tensor, uid", f.outputs()[0]);
        }
    }
    if (status) return status;
    // Each tensor made by at most one operation, each virtual one by exactly one; then the order in which inputs come first.
    std::map<long long, int> maker;
    for (size_t i = 0; i < ops.size(); i++) for (long long o : ops[i].outputs()) if (!maker.try_emplace(o, (int)i).second) { bad("tensor written by two operations, uid", o); return BAD_PARAM; }
    for (auto& [id, t] : p.tensors) if (t.isVirtual && !maker.count(id)) { bad("virtual tensor that no operation writes, uid", id); return BAD_PARAM; }
    std::vector<char> done(ops.size());
    while (p.ops.size() < ops.size()) {
        size_t before = p.ops.size();
        for (size_t i = 0; i < ops.size(); i++) {
            if (done[i]) continue;
            bool ready = true;
            for (long long in : ops[i].inputs()) { auto m = maker.find(in); if (m != maker.end() && !done[m->second]) ready = false; }
            if (ready) { done[i] = 1; p.ops.push_back(ops[i]); }
        }
        if (p.ops.size() == before) { bad("operations that need each other's outputs, count", (long long)(ops.size() - before)); return BAD_PARAM; }
    }
    return 0; }
// At plan time: the graph must read well, and the stand-in has arithmetic only for float and double memory.
static int fusedPlan(const GDesc* graph) {
    FProgram p;
    if (int r = fusedProgram(graph, p)) return r;
    for (auto& [id, t] : p.tensors) if (!t.isVirtual && t.type != 0 && t.type != 1) return NOT_SUPPORTED;
    return 0; }
static int fusedExecute(const GDesc* plan, const GDesc* pack, long long delayNs) {
    FProgram p;
    if (int r = fusedProgram(plan->graph, p)) return r;
    std::map<long long, uint64_t> memory;
    for (auto& [id, t] : p.tensors) {
        if (t.isVirtual) continue;
        uint64_t at = 0;
        for (int i = 0; i < pack->count(1000); i++) if (pack->get<long long>(1000, i) == id) at = pack->get<uint64_t>(1001, i);
        if (!at || at % t.align != 0) { fprintf(stderr, "FAKE: graph tensor %lld at %llx missing or not %lld-byte aligned\n", id, (unsigned long long)at, t.align); return BAD_PARAM; }
        memory[id] = at; }
    // The program and the pointers are copies: a captured execution runs after the plan and pack may be destroyed.
    return submit([p, memory, delayNs] {
        __atomic_add_fetch(&fake_virtual_ns, delayNs, __ATOMIC_RELAXED);  // the engine's simulated cost
        if (skipCompute) return 0;
        std::map<long long, std::vector<double>> values;
        // A tensor's values: made by an earlier operation, or read from memory on first use.
        auto load = [&](long long id) -> std::vector<double>& {
            auto it = values.find(id);
            if (it != values.end()) return it->second;
            const FTensor& t = p.tensors.at(id);
            std::vector<double> v(t.size());
            if (t.type == 0) { auto g = gather(t.S, (const float*)memory.at(id), false); std::copy(g.begin(), g.end(), v.begin()); }
            else { auto g = gather(t.S, (const double*)memory.at(id), false); std::copy(g.begin(), g.end(), v.begin()); }
            return values[id] = std::move(v); };
        auto store = [&](long long id, std::vector<double> v) {
            const FTensor& t = p.tensors.at(id);
            if (t.type == 0 && !t.isVirtual) for (double& e : v) e = (float)e;
            if (!t.isVirtual) {
                size_t i = 0;
                for (long long a = 0; a < t.S.d[0]; a++) for (long long b = 0; b < t.S.d[1]; b++) for (long long c = 0; c < t.S.d[2]; c++) for (long long e = 0; e < t.S.d[3]; e++, i++)
                    if (t.type == 0) ((float*)memory.at(id))[t.S.at(a, b, c, e)] = (float)v[i]; else ((double*)memory.at(id))[t.S.at(a, b, c, e)] = v[i];
            }
            values[id] = std::move(v); };
        for (const FOp& f : p.ops) {
            const Strided& X = p.tensors.at(f.t[0]).S;
            long long C = X.d[1], plane = X.d[2] * X.d[3];
            if (f.kind == G_OP_POINTWISE) {
                const std::vector<double>& x = load(f.t[0]);
                const std::vector<double>* b = f.t[1] < 0 ? nullptr : &load(f.t[1]);
                bool broadcast = b && b->size() != x.size();
                std::vector<double> y(x.size());
                for (size_t i = 0; i < x.size(); i++) {
                    double bv = !b ? 0 : broadcast ? (*b)[(i / plane) % C] : (*b)[i];
                    y[i] = f.mode == 0 ? x[i] + bv : f.mode == 1 ? x[i] * bv : f.mode == 9 ? x[i] - bv : f.mode == 200 ? (x[i] > 0 ? bv : 0.0) : std::max(x[i], 0.0); }
                store(f.t[2], std::move(y));
            } else if (f.kind == G_OP_REDUCTION) {
                const std::vector<double>& x = load(f.t[0]);
                std::vector<double> sum(C);
                for (size_t i = 0; i < x.size(); i++) sum[(i / plane) % C] += x[i];
                store(f.t[1], std::move(sum));
            } else if (f.kind == G_GEN_STATS) {
                const std::vector<double>& x = load(f.t[0]);
                std::vector<double> sum(C), squares(C);
                for (size_t i = 0; i < x.size(); i++) { long long c = (i / plane) % C; sum[c] += x[i]; squares[c] += x[i] * x[i]; }
                store(f.t[1], std::move(sum)); store(f.t[2], std::move(squares));
            } else {
                int dir = f.kind == G_FWD ? 0 : f.kind == G_BWD_DATA ? 1 : 2;
                long long out = f.outputs()[0];
                // The output starts from its old values only where beta reads them.
                std::vector<double> result = f.beta != 0 ? load(out) : std::vector<double>(p.tensors.at(out).size(), 0.0);
                double* v[3];
                std::vector<double> rounded[3];
                for (int k = 0; k < 3; k++) {
                    if (f.t[k] == out) { v[k] = result.data(); continue; }
                    const std::vector<double>& in = load(f.t[k]);
                    // A virtual input (a prologue's result) enters the convolution in the convolution's own type.
                    if (p.tensors.at(f.t[k]).isVirtual && p.tensors.at(f.t[1]).type == 0) {
                        rounded[k].assign(in.begin(), in.end());
                        for (double& e : rounded[k]) e = (float)e;
                        v[k] = rounded[k].data();
                    } else v[k] = const_cast<double*>(in.data()); }
                const Strided &Wt = p.tensors.at(f.t[1]).S, &Y = p.tensors.at(f.t[2]).S;
                Desc xd = nchw(X, 1), wd = nchw(Wt, 2), yd = nchw(Y, 1), cd{3};
                cd.pad_h = cd.pad_w = f.pad; cd.dil_h = cd.dil_w = f.dil; cd.u = cd.v = 1;
                conv<double>(dir, &xd, v[0], &wd, v[1], &cd, &yd, v[2], f.alpha, f.beta);
                store(out, std::move(result));
            }
        }
        return 0; }); }
API int cudnnBackendExecute(void*, GDesc* plan, GDesc* pack) {
    if (!plan->final || !pack->final || plan->type != G_PLAN || pack->type != G_PACK) return BAD_PARAM;
    const FakeEngine& e = fakeEngines[plan->engine];
    uint64_t ws = pack->get<uint64_t>(1003);
    // Each soname is its own copy of this library, so device allocations (libcuda's) are not visible here: only
    // presence and alignment can be checked.
    if (plan->workspace > 0 && !ws) { fprintf(stderr, "FAKE: engine workspace %lld missing\n", plan->workspace); return BAD_PARAM; }
    if (plan->engine == 6) return fusedExecute(plan, pack, 1000LL * e.delayUs);
    GDesc* op = descAttr(plan->graph, 801);
    int xa, wa, ya, ca, ala, bea; opNames(op->type, xa, wa, ya, ca, ala, bea);
    GDesc *xt = descAttr(op, xa), *wt = descAttr(op, wa), *yt = descAttr(op, ya), *cd = descAttr(op, ca);
    auto pointer = [&](const GDesc* t) -> uint64_t { long long id = t->get<long long>(906);
        for (int i = 0; i < pack->count(1000); i++) if (pack->get<long long>(1000, i) == id) return pack->get<uint64_t>(1001, i); return 0; };
    uint64_t x = pointer(xt), w = pointer(wt), y = pointer(yt);
    Strided X = strided(xt), Wt = strided(wt), Y = strided(yt);
    int type = xt->get<int>(901);
    for (auto [p, t] : {std::pair{x, xt}, {w, wt}, {y, yt}}) {
        long long align = t->get<long long>(900);
        if (!p || p % align != 0) { fprintf(stderr, "FAKE: graph tensor %lld at %llx missing or not %lld-byte aligned\n", t->get<long long>(906), (unsigned long long)p, align); return BAD_PARAM; } }
    int dir = op->type == G_FWD ? 0 : op->type == G_BWD_DATA ? 1 : 2, dil = (int)cd->get<long long>(102), pad = (int)cd->get<long long>(105);
    bool tensorCores = !e.notes.empty() && e.notes[0] == 0;
    long long delayNs = 1000LL * e.delayUs;
    // What the run reads, copied out of the plan and pack: a captured execution runs after they may be destroyed.
    double alpha = type == 0 ? op->get<float>(ala) : op->get<double>(ala), beta = type == 0 ? op->get<float>(bea) : op->get<double>(bea);
    return submit([=] {
        __atomic_add_fetch(&fake_virtual_ns, delayNs, __ATOMIC_RELAXED);  // the engine's simulated cost
        if (skipCompute) return 0;
        if (type == 0) gconv<float>(dir, X, (float*)x, Wt, (float*)w, Y, (float*)y, dil, pad, (float)alpha, (float)beta, tensorCores);
        else gconv<double>(dir, X, (double*)x, Wt, (double*)w, Y, (double*)y, dil, pad, alpha, beta, false);
        return 0; }); }
