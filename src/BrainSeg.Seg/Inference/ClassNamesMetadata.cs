using System.Text;
using BrainSeg.Mri.IO;
using BrainSeg.Mri;

namespace BrainSeg.Seg.Inference;

/// <summary>
/// Class names stored in a label map's NIfTI header: a comment extension (code 6) holding
/// "brainseg-classes: name0,name1,..." plus a short description, so that a segmentation says what its
/// numbers mean and <c>brainseg evaluate</c> can name the classes without a label table.
/// </summary>
public static class ClassNamesMetadata
{
    const int CommentCode = 6;
    const string Prefix = "brainseg-classes: ";

    /// <summary>A copy of <paramref name="source"/> that carries <paramref name="classNames"/> (earlier class names replaced).</summary>
    public static NiftiHeader Attach(NiftiHeader source, IReadOnlyList<string> classNames)
    {
        foreach (var name in classNames)
            if (name.Contains(',') || name.Contains('\n'))
                throw new BadInputException($"Class name \"{name}\" may not contain a comma or a line break.");
        var header = source.Clone();
        header.Extensions.RemoveAll(IsOurs);
        header.Extensions.Add(new NiftiExtension(CommentCode, Encoding.UTF8.GetBytes(Prefix + string.Join(',', classNames))));
        string description = "brainseg labels: " + string.Join(' ', classNames.Select((n, i) => $"{i}={n}"));
        header.Description = description.Length <= 79 ? description : description[..79];
        header.IntentCode = 1002; // NIFTI_INTENT_LABEL
        header.IntentName = "";
        return header;
    }

    /// <summary>The class names a brainseg label map carries, or null when it carries none.</summary>
    public static IReadOnlyList<string>? Read(NiftiHeader header)
    {
        foreach (var extension in header.Extensions)
            if (IsOurs(extension))
                return Encoding.UTF8.GetString(extension.Content).TrimEnd('\0')[Prefix.Length..].Split(',');
        return null;
    }

    static bool IsOurs(NiftiExtension e) =>
        e.Code == CommentCode && e.Content.AsSpan().StartsWith(Encoding.UTF8.GetBytes(Prefix));
}
