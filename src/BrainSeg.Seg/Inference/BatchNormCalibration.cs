using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Inference;

/// <summary>
/// Re-estimates the batch-norm running statistics of a trained segmenter with its final weights: forward
/// passes (no gradients, no weight change) over training minibatches in training mode. After a short run the
/// running averages still mix in statistics of early weights, and inference mode then shifts every layer;
/// this is the usual "precise batch norm" remedy. The trainer applies it before writing model.safetensors,
/// so 'brainseg segment' sees the statistics of the weights it runs.
/// </summary>
public static class BatchNormCalibration
{
    /// <summary>Minibatches the trainer runs; with momentum 0.1 the old averages keep under 5% weight.</summary>
    public const int DefaultPasses = 30;

    public static void Recalibrate(SegmentationNetwork network, IPatchSource data, PatchRequest request, int passes)
    {
        var backend = network.Parameters().First().Backend;
        var wasTraining = network.IsTraining;
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
                    network.Forward(tape, x);
                    done++;
                }
                if (done == before) break; // no data
            }
        }
        finally
        {
            network.Train(wasTraining);
        }
    }
}
