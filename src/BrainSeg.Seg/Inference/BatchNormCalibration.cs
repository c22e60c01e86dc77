using BrainSeg.Engine.Autograd;
using BrainSeg.Engine;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Inference;

/// <summary>
/// Re-estimates the batch-norm running statistics of a trained segmenter with its final weights: forward
/// passes (no gradients, no weight change) over training minibatches in training mode. After a short run the
/// running averages still mix in statistics of early weights, and inference mode then shifts every layer;
/// this is the usual "precise batch norm" remedy. The updated statistics are written back to the model file,
/// so 'brainseg segment' with it gives the same result.
/// </summary>
public static class BatchNormCalibration
{
    public static void Recalibrate(SegmentationModel model, IPatchSource data, PatchRequest request, int passes, string modelFile)
    {
        var network = model.Network;
        var backend = network.Parameters().First().Backend;
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
            network.Eval();
        }
        var (tensors, meta) = SafeTensors.Read(modelFile);
        var buffers = network.NamedBuffers().ToDictionary(b => $"segmenter.{b.Name}", b => b.Tensor);
        var updated = tensors.Select(t => buffers.TryGetValue(t.Name, out var live) ? SafeTensor.From(t.Name, live) : t).ToList();
        meta["batchnorm_recalibrated"] = $"{passes} minibatches of {request.BatchSize}";
        SafeTensors.Write(modelFile, updated, meta);
    }
}
