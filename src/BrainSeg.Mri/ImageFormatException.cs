namespace BrainSeg.Mri;

/// <summary>
/// A file that is not a readable image, or whose header contradicts its content. The message names the
/// file, the problem and what to do about it; the command line turns it into exit code 2.
/// </summary>
public sealed class ImageFormatException : BadInputException
{
    public ImageFormatException(string path, string problem, string fix, Exception? inner = null)
        : base($"{path}: {problem}. {fix}", inner)
    {
        Path = path;
        Problem = problem;
    }

    public string Path { get; }
    public string Problem { get; }
}
