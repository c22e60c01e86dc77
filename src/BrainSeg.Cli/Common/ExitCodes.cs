namespace BrainSeg.Cli.Common;

/// <summary>Process exit codes shared by every verb.</summary>
public static class ExitCodes
{
    /// <summary>The command did what was asked and every check passed.</summary>
    public const int Success = 0;

    /// <summary>The command ran but its result is a failure (e.g. a gradient check above tolerance).</summary>
    public const int Failure = 1;

    /// <summary>The request was wrong: unknown option, bad value, missing file, no usable device.</summary>
    public const int UsageError = 2;

    /// <summary>A defect in brainseg itself; the stack trace is printed.</summary>
    public const int InternalError = 70;
}
