// Checks every kernel's indexing and reductions against plain loops WITHOUT a GPU, by compiling the .cu
// files as host C++ (emu.h runs a block's CUDA threads as fibers). Run from the repository root:
//   clang++ -std=c++20 -O1 -pthread -I kernels -I kernels/emulation kernels/emulation/kernel-tests.cpp -o /tmp/kt && /tmp/kt
#include "emu.h"
#include "elementwise.cu"
#include "channels.cu"
#include "pooling.cu"
#include "softmax.cu"
#include <cstdio>
#include <random>
#include <cassert>

static std::mt19937 rng(42);
static std::vector<double> rnd(size_t n, double lo = -1, double hi = 1) { std::uniform_real_distribution<double> u(lo, hi); std::vector<double> v(n); for (auto& x : v) x = u(rng); return v; }
static std::vector<double> ties(size_t n) { std::uniform_int_distribution<int> u(0, 3); std::vector<double> v(n); for (auto& x : v) x = u(rng) * 0.25; return v; }
static int failures = 0;
static void check(const char* what, const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-12)
{
    double d = 0, n = 0; int nan = 0;
    for (size_t i = 0; i < a.size(); i++) { if (std::isnan(a[i])) nan++; d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i]; }
    double rel = n == 0 ? std::sqrt(d) : std::sqrt(d / n);
    bool ok = nan == 0 && rel <= tol && a.size() == b.size();
    if (!ok) failures++;
    printf("%-40s %s rel=%.3g nan=%d\n", what, ok ? "ok  " : "FAIL", rel, nan);
}
static std::vector<double> nans(size_t n) { return std::vector<double>(n, NAN); }
const unsigned G = 3, B = 64; // small grid: exercises the grid-stride loops

int main()
{
    // ---- maxpool forward/backward (gather and scatter) vs reference ----
    for (auto ks : std::vector<std::pair<int,int>>{{2,2},{3,2},{2,3},{3,1}})
    {
        int k = ks.first, s = ks.second;
        int P = 6, H = 14, W = 11, Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
        auto x = ties(P * H * W);
        auto y = nans(P * Ho * Wo); std::vector<int> am(P * Ho * Wo, -7);
        long long n = P * Ho * Wo;
        launch(G, B, [&] { maxpool_forward<double>(x.data(), y.data(), am.data(), H, W, Ho, Wo, k, s, n); });
        std::vector<double> ry(n); std::vector<int> ram(n);
        for (int p = 0; p < P; p++) for (int i = 0; i < Ho; i++) for (int j = 0; j < Wo; j++) {
            int best = i * s * W + j * s;
            for (int a = 0; a < k; a++) for (int b = 0; b < k; b++) { int at = (i * s + a) * W + j * s + b; if (x[p*H*W+at] > x[p*H*W+best]) best = at; }
            ry[(p*Ho+i)*Wo+j] = x[p*H*W+best]; ram[(p*Ho+i)*Wo+j] = best; }
        check("maxpool fwd y", y, ry);
        check("maxpool fwd argmax", std::vector<double>(am.begin(), am.end()), std::vector<double>(ram.begin(), ram.end()));
        auto dy = rnd(n);
        std::vector<double> rdx(P * H * W, 0.0);
        for (int p = 0; p < P; p++) for (int o = 0; o < Ho * Wo; o++) rdx[p*H*W + ram[p*Ho*Wo+o]] += dy[p*Ho*Wo+o];
        auto dx = nans(P * H * W); long long nin = P * H * W;
        launch(G, B, [&] { maxpool_backward<double>(dy.data(), am.data(), dx.data(), H, W, Ho, Wo, k, s, nin); });
        check("maxpool bwd gather (exact)", dx, rdx, 0);
        std::vector<double> dx2(P * H * W, 0.0); long long planes = P, pin = H * W, pout = Ho * Wo;
        launch(G, B, [&] { maxpool_backward_scatter<double>(dy.data(), am.data(), dx2.data(), pin, pout, planes); });
        check("maxpool bwd scatter (exact)", dx2, rdx, 0);
    }
    // ---- channel sum, bias (uneven parts of the batch; inner = 1 walks several planes per step) ----
    for (long long S : {323LL, 1LL})
    {
        int N = 7, C = 5, inner = (int)S, planes = N * C, ppp = 3, parts = 3; long long n = N * C * S;
        auto dy = rnd(n); auto db = nans(C); std::vector<double> partials(C * parts, NAN); long long cc = C;
        launch(C * parts, REDUCE_THREADS, [&] { channel_partial_sums<double>(dy.data(), partials.data(), C, inner, N, ppp, parts); });
        launch(G, B, [&] { channel_sum_totals<double>(partials.data(), db.data(), parts, cc); });
        std::vector<double> r(C, 0); for (int b = 0; b < N; b++) for (int c = 0; c < C; c++) for (int s = 0; s < S; s++) r[c] += dy[(b*C+c)*S+s];
        check(S == 1 ? "channel_sum [N,C]" : "channel_sum", db, r);
        auto y = rnd(n); auto bias = rnd(C); auto ry = y;
        for (long long i = 0; i < n; i++) ry[i] += bias[(i / S) % C];
        launch(2, G, B, [&] { add_channel_bias<double>(y.data(), bias.data(), C, inner, planes, 0); });
        check(S == 1 ? "add_channel_bias [N,C]" : "add_channel_bias", y, ry);
    }
    {
        int C = 2, inner = 0, N = 3, parts = 3; std::vector<double> partials(C * parts, NAN); auto db = nans(C); long long cc = C;
        launch(C * parts, REDUCE_THREADS, [&] { channel_partial_sums<double>(nullptr, partials.data(), C, inner, N, 1, parts); });
        launch(G, B, [&] { channel_sum_totals<double>(partials.data(), db.data(), parts, cc); });
        check("channel_sum of empty planes", db, {0, 0}, 0);
    }
    // ---- batch norm: the batch in parts of 2 planes (the last one short), fused ReLU on and off ----
    for (int relu : {0, 1})
    {
        int N = 5, C = 3, inner = 195, planes = N * C, ppp = 2, parts = 3; long long S = inner, n = N * C * S, M = N * S, cc = C;
        auto x = rnd(n, -2, 5); auto gamma = rnd(C, 0.5, 1.5); auto beta = rnd(C);
        auto rm = rnd(C), rv = rnd(C, 0.5, 2); auto rm0 = rm, rv0 = rv;
        auto sm = nans(C), si = nans(C), ss = nans(2 * C), y = nans(n); std::vector<double> partials(2 * C * parts, NAN);
        double mom = 0.1, eps = 1e-5;
        launch(C * parts, REDUCE_THREADS, [&] { batchnorm_partial_moments<double>(x.data(), partials.data(), C, inner, N, ppp, parts); });
        launch(2, G, B, [&] { batchnorm_normalise<double>(x.data(), partials.data(), parts, gamma.data(), beta.data(), rm.data(), rv.data(), sm.data(), si.data(), y.data(), C, inner, planes, M, mom, eps, relu); });
        std::vector<double> rmean(C), rinv(C), rvar(C), ry(n), rrm(C), rrv(C);
        for (int c = 0; c < C; c++) {
            double sum = 0; for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) sum += x[(b*C+c)*S+s];
            double mean = sum / M, sq = 0; for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) { double d = x[(b*C+c)*S+s] - mean; sq += d*d; }
            double var = sq / M; rmean[c] = mean; rinv[c] = 1 / std::sqrt(var + eps);
            rrm[c] = (1 - mom) * rm0[c] + mom * mean; rrv[c] = (1 - mom) * rv0[c] + mom * var * M / (M - 1);
            for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) { double v = gamma[c] * (x[(b*C+c)*S+s] - mean) * rinv[c] + beta[c]; ry[(b*C+c)*S+s] = relu && v <= 0 ? 0 : v; } }
        check("bn saveMean", sm, rmean); check("bn saveInvStd", si, rinv, 1e-10); check("bn runningMean", rm, rrm); check("bn runningVar", rv, rrv, 1e-10);
        check(relu ? "bn y (fused ReLU)" : "bn y", y, ry);
        // the same values moved by 1e5 ≫ σ: the variance must not cancel (naive Σx² − (Σx)²/M loses ~7 digits here)
        auto far = x; for (auto& v : far) v += 1e5;
        auto smFar = nans(C), siFar = nans(C), rmFar = rm0, rvFar = rv0, yFar = nans(n);
        launch(C * parts, REDUCE_THREADS, [&] { batchnorm_partial_moments<double>(far.data(), partials.data(), C, inner, N, ppp, parts); });
        launch(2, G, B, [&] { batchnorm_normalise<double>(far.data(), partials.data(), parts, gamma.data(), beta.data(), rmFar.data(), rvFar.data(), smFar.data(), siFar.data(), yFar.data(), C, inner, planes, M, mom, eps, relu); });
        auto rmeanFar = rmean; for (auto& v : rmeanFar) v += 1e5;
        check("bn saveMean at 1e5", smFar, rmeanFar); check("bn saveInvStd at 1e5", siFar, rinv, 1e-10);
        // inference
        auto yi = nans(n); auto ss2 = nans(2 * C);
        launch(G, B, [&] { batchnorm_inference_coefficients<double>(nullptr, beta.data(), rm.data(), rv.data(), ss2.data(), 1e-3, cc); });
        launch(2, G, B, [&] { channel_affine<double>(x.data(), ss2.data(), yi.data(), C, inner, planes, relu); });
        std::vector<double> ryi(n); for (long long i = 0; i < n; i++) { int c = (i / S) % C; double v = (x[i] - rm[c]) / std::sqrt(rv[c] + 1e-3) + beta[c]; ryi[i] = relu && v <= 0 ? 0 : v; }
        check(relu ? "bn inference (no gamma, fused ReLU)" : "bn inference (no gamma)", yi, ryi);
        // backward: the fused op masks dy by its output y; unfused, y is not passed (null)
        auto dy = rnd(n); auto dx = nans(n), dg = nans(C), dbeta = nans(C);
        const double* mask = relu ? y.data() : nullptr;
        launch(C * parts, REDUCE_THREADS, [&] { batchnorm_backward_partials<double>(x.data(), dy.data(), mask, sm.data(), si.data(), partials.data(), C, inner, N, ppp, parts); });
        launch(2, G, B, [&] { batchnorm_backward_data<double>(x.data(), dy.data(), mask, gamma.data(), sm.data(), si.data(), partials.data(), parts, dg.data(), dbeta.data(), dx.data(), C, inner, planes, M); });
        // reference by finite differences of the loss L = Σ dy·y(x) w.r.t. x (training mode, ReLU included)
        auto forward = [&](const std::vector<double>& xx) { double L = 0; for (int c = 0; c < C; c++) {
            double sum = 0; for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) sum += xx[(b*C+c)*S+s];
            double mean = sum / M, sq = 0; for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) { double d = xx[(b*C+c)*S+s] - mean; sq += d*d; }
            double inv = 1 / std::sqrt(sq / M + eps);
            for (int b = 0; b < N; b++) for (int s = 0; s < S; s++) { long long i = (b*C+c)*S+s; double v = gamma[c] * (xx[i] - mean) * inv + beta[c]; L += dy[i] * (relu && v <= 0 ? 0 : v); } } return L; };
        std::vector<double> sub, fsub;
        for (long long i = 0; i < n; i += 37) {
            if (relu && std::fabs(ry[i]) < 1e-3) continue; // too close to the kink for a difference quotient
            auto xp = x, xm = x; xp[i] += 1e-5; xm[i] -= 1e-5; sub.push_back(dx[i]); fsub.push_back((forward(xp) - forward(xm)) / 2e-5); }
        check(relu ? "bn backward dx vs finite differences (fused ReLU)" : "bn backward dx vs finite differences", sub, fsub, 1e-6);
        std::vector<double> rdb(C, 0), rdg(C, 0);
        for (long long i = 0; i < n; i++) { int c = (i / S) % C; double g = relu && y[i] <= 0 ? 0 : dy[i]; rdb[c] += g; rdg[c] += g * (x[i] - sm[c]) * si[c]; }
        check("bn dbeta", dbeta, rdb); check("bn dgamma", dg, rdg);
    }
    // ---- concat / slice / crop / pad ----
    {
        int N = 2, Ca = 3, Cb = 4; long long S = 63;
        auto a = rnd(N * Ca * S), b = rnd(N * Cb * S); long long n = N * (Ca + Cb) * S; auto y = nans(n);
        launch(G, B, [&] { concat_channels<double>(a.data(), b.data(), y.data(), Ca, Cb, S, n); });
        std::vector<double> ry; for (int bb = 0; bb < N; bb++) { ry.insert(ry.end(), a.begin() + bb*Ca*S, a.begin() + (bb+1)*Ca*S); ry.insert(ry.end(), b.begin() + bb*Cb*S, b.begin() + (bb+1)*Cb*S); }
        check("concat", y, ry, 0);
        auto da = nans(N * Ca * S), db = nans(N * Cb * S); long long na = da.size(), nb = db.size(); int cy = Ca + Cb, zero = 0;
        launch(G, B, [&] { slice_channels<double>(y.data(), da.data(), cy, zero, Ca, S, na); });
        launch(G, B, [&] { slice_channels<double>(y.data(), db.data(), cy, Ca, Cb, S, nb); });
        check("slice a", da, a, 0); check("slice b", db, b, 0);
        for (auto q : std::vector<std::array<int,4>>{{17,16,9,5},{10,10,10,10},{25,14,3,1}}) { int hb = q[0], wb = q[1], hs = q[2], ws = q[3];
            int P = 6; auto x = rnd(P * hb * wb); auto c = nans(P * hs * ws); long long nc = c.size();
            int oh = (hb - hs) / 2, ow = (wb - ws) / 2;
            launch(G, B, [&] { shift_window<double>(x.data(), c.data(), hb, wb, hs, ws, oh, ow, nc); });
            std::vector<double> rc(nc); for (int p = 0; p < P; p++) for (int i = 0; i < hs; i++) for (int j = 0; j < ws; j++) rc[(p*hs+i)*ws+j] = x[(p*hb+i+oh)*wb+j+ow];
            check("crop", c, rc, 0);
            auto pd = nans(P * hb * wb); long long np = pd.size(); int moh = -oh, mow = -ow;
            launch(G, B, [&] { shift_window<double>(c.data(), pd.data(), hs, ws, hb, wb, moh, mow, np); });
            std::vector<double> rp(np, 0); for (int p = 0; p < P; p++) for (int i = 0; i < hs; i++) for (int j = 0; j < ws; j++) rp[(p*hb+i+oh)*wb+j+ow] = c[(p*hs+i)*ws+j];
            check("pad", pd, rp, 0);
        }
    }
    // ---- softmax, cross-entropy, argmax, one-hot ----
    {
        int N = 2, C = 4; long long S = 529, V = N * S, n = N * C * S;
        auto lg = rnd(n, -6, 6), t = rnd(n, 0, 1); auto pr = nans(n); std::vector<double> vl(V, NAN); auto loss = nans(1);
        launch(G, B, [&] { softmax_xent_forward<double>(lg.data(), t.data(), pr.data(), vl.data(), C, S, V); });
        launch(1, REDUCE_THREADS, [&] { mean_reduce<double>(vl.data(), loss.data(), V); });
        std::vector<double> rp(n); double rl = 0;
        for (long long v = 0; v < V; v++) { long long b = v / S, s = v % S, base = b*C*S+s; double m = -INFINITY; for (int c = 0; c < C; c++) m = std::max(m, lg[base+c*S]);
            double sum = 0; for (int c = 0; c < C; c++) sum += std::exp(lg[base+c*S]-m);
            for (int c = 0; c < C; c++) { rp[base+c*S] = std::exp(lg[base+c*S]-m)/sum; rl -= t[base+c*S] * std::log(rp[base+c*S]); } }
        rl /= V;
        check("xent probs", pr, rp); check("xent loss", loss, {rl});
        auto pr2 = nans(n); launch(G, B, [&] { softmax_forward<double>(lg.data(), pr2.data(), C, S, V); }); check("softmax", pr2, rp);
        std::vector<double> dl = {1.7}; auto dlg = nans(n);
        launch(G, B, [&] { softmax_xent_backward<double>(pr.data(), t.data(), dl.data(), dlg.data(), C, S, V); });
        std::vector<double> rdl(n); for (long long v = 0; v < V; v++) { long long b = v / S, s = v % S, base = b*C*S+s; double ts = 0; for (int c = 0; c < C; c++) ts += t[base+c*S];
            for (int c = 0; c < C; c++) rdl[base+c*S] = 1.7 * (rp[base+c*S]*ts - t[base+c*S]) / V; }
        check("xent backward", dlg, rdl);
        auto tx = ties(n); std::vector<int> lab(V, -7);
        launch(G, B, [&] { argmax_channels<double>(tx.data(), lab.data(), C, S, V); });
        std::vector<double> rlab(V); for (long long v = 0; v < V; v++) { long long b = v / S, s = v % S, base = b*C*S+s; int best = 0; for (int c = 1; c < C; c++) if (tx[base+c*S] > tx[base+best*S]) best = c; rlab[v] = best; }
        check("argmax", std::vector<double>(lab.begin(), lab.end()), rlab, 0);
        auto oh = nans(n); launch(G, B, [&] { one_hot<double>(lab.data(), oh.data(), C, S, n); });
        std::vector<double> roh(n, 0); for (long long v = 0; v < V; v++) roh[(v / S * C + lab[v]) * S + v % S] = 1;
        check("one_hot", oh, roh, 0);
    }
    // ---- elementwise, dropout, rmsprop ----
    {
        long long n = 1001; auto a = rnd(n), b = rnd(n); auto y = nans(n);
        launch(G, B, [&] { add<double>(a.data(), b.data(), y.data(), n); }); std::vector<double> r(n); for (int i = 0; i < n; i++) r[i] = a[i] + b[i]; check("add", y, r, 0);
        auto z = a; launch(G, B, [&] { add_scaled<double>(z.data(), b.data(), -0.37, n); }); for (int i = 0; i < n; i++) r[i] = a[i] + -0.37 * b[i]; check("add_scaled", z, r);
        auto f = nans(n); launch(G, B, [&] { fill<double>(f.data(), 2.5, n); }); check("fill", f, std::vector<double>(n, 2.5), 0);
        auto rl = nans(n); launch(G, B, [&] { relu_forward<double>(a.data(), rl.data(), n); }); for (int i = 0; i < n; i++) r[i] = a[i] > 0 ? a[i] : 0; check("relu", rl, r, 0);
        auto m = nans(n); unsigned th = (unsigned)std::ceil(0.5 * (1 << 24)); unsigned long long seed = 99, off = 3;
        launch(G, B, [&] { dropout_mask<double>(m.data(), seed, off, th, 2.0, n); });
        int kept = 0; for (double v : m) kept += v == 2.0; printf("dropout kept %d of %lld (expect ~half)\n", kept, n);
        if (kept < 400 || kept > 600) failures++;
        auto p = a, ms = rnd(n, 0, 0.1), ms0 = ms; launch(G, B, [&] { rmsprop_step<double>(p.data(), b.data(), ms.data(), 1e-3, 0.9, 1e-6, -1.0, n); });
        std::vector<double> rp(n), rms(n); for (int i = 0; i < n; i++) { double g = -b[i]; rms[i] = 0.9 * ms0[i] + 0.1 * g * g; rp[i] = a[i] - 1e-3 * g / std::sqrt(rms[i] + 1e-6); }
        check("rmsprop param", p, rp); check("rmsprop ms", ms, rms);
    }
    printf(failures ? "FAILURES: %d\n" : "all ok\n", failures);
    return failures != 0;
}
