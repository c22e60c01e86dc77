namespace BrainSeg.Engine.Cpu;

// Float32 hot paths. (First version: the direct loops; im2col + SGEMM replaces them.)
public sealed partial class CpuBackend
{
    private void ConvForwardFast(ConvGeometry g, float[] x, float[] w, float[] y) => ConvForwardDirect(g, x, w, y);
    private void ConvBackwardDataFast(ConvGeometry g, float[] dy, float[] w, float[] dx) => ConvBackwardDataDirect(g, dy, w, dx);
    private void ConvBackwardFilterFast(ConvGeometry g, float[] x, float[] dy, float[] dw) => ConvBackwardFilterDirect(g, x, dy, dw);
}

internal static class Sgemm
{
    public static void Multiply(CpuBackend backend, bool ta, bool tb, int m, int n, int k, float alpha, float[] a, float[] b, float beta, float[] c) =>
        backend.GemmSimpleFloat(ta, tb, m, n, k, alpha, a, b, beta, c);
}
