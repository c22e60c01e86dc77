namespace BrainSeg.Mri;

/// <summary>
/// A request brainseg refuses because of what it was given: an option value, a file's content, an output
/// that would replace an input. The message names the problem and the fix in one sentence or two; the
/// command line prints it as one line and exits 2. Broken invariants of brainseg itself use other types
/// (ArgumentException, InvalidOperationException, ...) and exit 70 with their stack trace.
/// </summary>
public class BadInputException : Exception
{
    public BadInputException(string message, Exception? inner = null) : base(message, inner) { }
}
