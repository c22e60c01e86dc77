using BrainSeg.Engine;
using BrainSeg.Engine.Autograd;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Seg.Checkpoints;
using BrainSeg.Seg.Networks;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Inference;

/// <summary>
/// A trained segmenter ready for inference: the network in evaluation mode (batch norm uses its running
/// statistics, dropout is off), the class names, the intensity normalisation and the plane it was trained
/// on, all read from a brainseg checkpoint's metadata.
/// </summary>
public sealed class SegmentationModel : IDisposable
{
    public SegmentationModel(SegmentationNetwork network, IReadOnlyList<string> classNames, IntensityNormalisation normalisation, Mri.Geometry.Plane plane, string source = "model")
    {
        if (classNames.Count != network.Classes)
            throw new ArgumentException($"{source}: {classNames.Count} class names for a network of {network.Classes} classes.");
        Network = network;
        ClassNames = classNames;
        Normalisation = normalisation;
        Plane = plane;
        Source = source;
        Network.Eval();
    }

    public SegmentationNetwork Network { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public IntensityNormalisation Normalisation { get; }
    public Mri.Geometry.Plane Plane { get; }
    public string Source { get; }

    /// <summary>Zeros added on every side of a slice so that the valid convolutions return a slice-sized output: (RF − 1) / 2.</summary>
    public int PaddingRadius => (Network.ReceptiveField - 1) / 2;

    /// <summary>
    /// Loads RUN_DIR/model.safetensors (or a checkpoint) written by <c>brainseg train</c>. Only the segmenter's
    /// weights and batch-norm statistics are used; a discriminator and optimiser state are ignored.
    /// <paramref name="networkFactory"/> replaces the network the metadata names (small networks in tests).
    /// </summary>
    public static SegmentationModel Load(IBackend backend, string path,
        Func<IBackend, int, NetworkOptions, SegmentationNetwork>? networkFactory = null)
    {
        var (tensors, meta) = SafeTensors.Read(path);
        // Every value is range-checked before anything is built from it (the class count sizes the last layer).
        var saved = CheckpointMetadata.Read(meta, path);
        var options = saved.Options;
        var netOptions = options.NetworkOptions(new RandomStream(options.Seed));
        SegmentationNetwork network = networkFactory?.Invoke(backend, saved.Classes, netOptions)
            ?? (options.Network == NetworkKind.Fcn ? new FcnNetwork(backend, saved.Classes, netOptions) : new DilatedNetwork(backend, saved.Classes, netOptions));
        try
        {
            var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
            foreach (var (name, t) in network.NamedParameters().Concat(network.NamedBuffers()))
            {
                if (!byName.TryGetValue($"segmenter.{name}", out var stored))
                    throw new InvalidDataException($"{path} lacks tensor 'segmenter.{name}'; it was written for another network.");
                stored.CopyTo(t, path);
            }
            return new SegmentationModel(network, saved.ClassNames, saved.Normalisation, options.Plane, path);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    public void Dispose() => Network.Dispose();
}
