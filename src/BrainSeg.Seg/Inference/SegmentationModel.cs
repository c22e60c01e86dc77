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
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no such model; give RUN_DIR/model.safetensors written by 'brainseg train'.", path);
        var (tensors, meta) = SafeTensors.Read(path);
        if (!meta.TryGetValue("format", out var format) || format != Trainer.FormatTag)
            throw new InvalidDataException($"{path} is not a brainseg model (format '{format}', expected '{Trainer.FormatTag}'); give RUN_DIR/model.safetensors written by 'brainseg train'.");
        var options = TrainingOptions.ReadFrom(meta, path);
        if (!meta.TryGetValue("classes", out var classText) || !int.TryParse(classText, out int classes))
            throw new InvalidDataException($"{path}: the metadata lacks the class count; retrain with this version of brainseg.");
        IReadOnlyList<string> names = meta.TryGetValue("class_names", out var n) ? n.Split(',') : DefaultNames(classes);
        if (names.Count != classes) names = DefaultNames(classes);
        var normalisation = meta.TryGetValue("normalisation", out var norm) ? IntensityNormalisation.Parse(norm) : IntensityNormalisation.Default;

        var netOptions = options.NetworkOptions(new RandomStream(options.Seed));
        SegmentationNetwork network = networkFactory?.Invoke(backend, classes, netOptions)
            ?? (options.Network == NetworkKind.Fcn ? new FcnNetwork(backend, classes, netOptions) : new DilatedNetwork(backend, classes, netOptions));
        try
        {
            var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
            foreach (var (name, t) in network.NamedParameters().Concat(network.NamedBuffers()))
            {
                if (!byName.TryGetValue($"segmenter.{name}", out var stored))
                    throw new InvalidDataException($"{path} lacks tensor 'segmenter.{name}'; it was written for another network.");
                stored.CopyTo(t, path);
            }
            return new SegmentationModel(network, names, normalisation, options.Plane, path);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    static string[] DefaultNames(int classes) => Enumerable.Range(0, classes).Select(i => i == 0 ? "background" : $"class{i}").ToArray();

    public void Dispose() => Network.Dispose();
}
