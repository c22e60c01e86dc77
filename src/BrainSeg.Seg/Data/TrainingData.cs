using BrainSeg.Mri;
using BrainSeg.Mri.Datasets;
using BrainSeg.Mri.Labels;
using BrainSeg.Mri.Normalisation;
using BrainSeg.Mri.Phantom;
using BrainSeg.Mri.Sampling;
using BrainSeg.Seg.Training;

namespace BrainSeg.Seg.Data;

/// <summary>The labelled training images of a run and what its checkpoint should say of them.</summary>
public static class TrainingData
{
    /// <summary>
    /// The images of split "train", normalised and mapped to classes: <paramref name="data"/> is "phantom" (the
    /// built-in synthetic brain), a manifest.csv, a dataset folder (MRBrainS13 or MICCAI 2012 layout) or one
    /// image with <paramref name="labels"/>.
    /// </summary>
    public static (IPatchSource Source, Dictionary<string, string> Description) Load(string data, string? labels, string? labelMap, IntensityNormalisation normalisation)
    {
        if (data == "phantom")
        {
            var phantom = SyntheticPhantom.Generate();
            var image = new TrainingImage(normalisation.Apply(phantom.Image), phantom.Classes);
            return (new SampledPatchSource([image], phantom.ClassNames.Count), new Dictionary<string, string>
            {
                ["data"] = "phantom (built-in synthetic brain, 64^3, seed 1)",
                ["class_names"] = string.Join(",", phantom.ClassNames),
                ["label_map"] = "phantom classes (numbered as freesurfer-to-adult6)",
                ["normalisation"] = normalisation.ToString(),
            });
        }
        var table = LabelTable.Load(labelMap ?? throw new BadInputException($"{data} needs a label map (source labels to classes): a preset or a .tsv table."));
        IReadOnlyList<Subject> subjects =
            data.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) ? DatasetLayout.Manifest(data)
            : Directory.Exists(data) ? (Directory.Exists(Path.Combine(data, "TrainingData")) ? DatasetLayout.MrBrainS13(data) : DatasetLayout.Miccai2012(data))
            : [new Subject(Path.GetFileName(data), data, labels, "train")];
        var training = subjects.Where(s => s.Split == "train" && s.LabelPath is not null).ToList();
        if (training.Count == 0)
            throw new BadInputException($"{data} lists no labelled images in the split 'train'.");
        var images = new List<TrainingImage>();
        foreach (var subject in training)
        {
            var (image, labelVolume) = DatasetLayout.Load(subject);
            InputWarnings.NonFinite(subject.ImagePath, image.Voxels);
            images.Add(new TrainingImage(normalisation.Apply(image), table.Apply(labelVolume!.Voxels, subject.LabelPath!)));
        }
        return (new SampledPatchSource(images, table.ClassCount), new Dictionary<string, string>
        {
            ["data"] = string.Join(";", training.Select(s => $"{s.Id}={Path.GetFullPath(s.ImagePath)}|{Path.GetFullPath(s.LabelPath!)}")),
            ["class_names"] = string.Join(",", table.ClassNames),
            ["label_map"] = table.Name,
            ["normalisation"] = normalisation.ToString(),
        });
    }
}
