using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Engine.Nn;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Inference;

/// <summary>
/// Re-estimates the batch-norm running statistics of a trained segmenter with its final weights: forward
/// passes (no gradients, no weight change) over training minibatches in training mode, each pass weighted
/// equally (pass k with momentum 1/k, so the first replaces the old statistics outright). After a short run the
/// running averages still mix in statistics of early weights, and inference mode then shifts every layer;
/// this is the usual "precise batch norm" remedy. An exponential average with the training momentum of 0.1
/// kept 0.9^30 ≈ 4% of the stale statistics, enough to wreck a run of a few dozen iterations whose activations
/// had shrunk far below the initial running variance of 1. The trainer applies it before writing
/// model.safetensors, so 'brainseg segment' sees the statistics of the weights it runs.
/// </summary>
public static class BatchNormCalibration
{
    /// <summary>Minibatches the trainer runs.</summary>
    public const int DefaultPasses = 30;

    public static void Recalibrate(SegmentationNetwork network, IPatchSource data, PatchRequest request, int passes)
    {
        var backend = network.Parameters().First().Backend;
        var wasTraining = network.IsTraining;
        var norms = Layers(network).ToList();
        var momenta = norms.Select(n => n.Momentum).ToList();
        network.Train();
        try
        {
            int done = 0;
            for (int epoch = 1_000_000; done < passes; epoch++)
            {
                int before = done;
                foreach (var batch in data.Epoch(request, epoch))
                {
                    if (done == passes) break;
                    int side = request.InputSize;
                    using var tape = Tape.NoGrad(backend);
                    var x = tape.Own(Tensor.FromHost(backend, batch.Images.AsSpan(0, batch.Count * side * side), batch.Count, 1, side, side));
                    foreach (var norm in norms) norm.Momentum = 1.0 / (done + 1);
                    network.Forward(tape, x);
                    done++;
                }
                if (done == before) break; // no data
            }
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++) norms[i].Momentum = momenta[i];
            network.Train(wasTraining);
        }
    }

    static IEnumerable<BatchNorm2d> Layers(Module module) =>
        (module is BatchNorm2d norm ? [norm] : Enumerable.Empty<BatchNorm2d>()).Concat(module.Children.SelectMany(c => Layers(c.Module)));
}
