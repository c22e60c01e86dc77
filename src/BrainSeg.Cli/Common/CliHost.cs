using System.CommandLine;
using System.CommandLine.Parsing;
using BrainSeg.Cuda;
using BrainSeg.Mri;
using BrainSeg.Seg.Training;

namespace BrainSeg.Cli.Common;

/// <summary>
/// Parses, invokes and turns failures into exit codes, so that every verb behaves alike:
/// a usage error or a refused input prints one line <c>brainseg: error: ...</c> and exits 2; a failed
/// result one line and exit 1; only a defect in brainseg itself prints a stack trace (exit 70).
/// </summary>
public static class CliHost
{
    /// <summary>Set to 1 to print the stack trace of every error, user-facing ones included.</summary>
    public const string DebugVariable = "BRAINSEG_DEBUG";

    public static int Run(RootCommand root, string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 || parsed.UnmatchedTokens.Count > 0)
            return ReportParseErrors(parsed, stderr);

        var invocation = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            // Exceptions come back here so that they map to one line and a fixed exit code.
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return parsed.Invoke(invocation);
        }
        catch (Exception e)
        {
            return ReportException(e, stderr);
        }
    }

    /// <summary>One line: the first parse error (the others usually follow from it) and where the usage is.</summary>
    static int ReportParseErrors(ParseResult parsed, TextWriter stderr)
    {
        // --help clears parse errors, so 'brainseg no-such-verb --help' leaves only unmatched tokens behind.
        string message = parsed.Errors.Count > 0 ? OneLine(parsed.Errors[0].Message) : $"unrecognized command or argument '{parsed.UnmatchedTokens[0]}'";
        stderr.WriteLine($"brainseg: error: {message} (see '{CommandPath(parsed.CommandResult)} --help')");
        return ExitCodes.UsageError;
    }

    static string CommandPath(CommandResult result)
    {
        var names = new Stack<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
            if (r is CommandResult c)
                names.Push(c.Parent is null ? "brainseg" : c.Command.Name);
        return string.Join(' ', names);
    }

    static int ReportException(Exception e, TextWriter stderr)
    {
        e = Unwrap(e);
        bool debug = Environment.GetEnvironmentVariable(DebugVariable) == "1";
        int code = ExitCodeOf(e);
        if (code == ExitCodes.InternalError)
        {
            stderr.WriteLine($"brainseg: internal error: {e.GetType().Name}: {OneLine(e.Message)}");
            stderr.WriteLine(e);
            return code;
        }
        stderr.WriteLine(e is OperationCanceledException ? "brainseg: cancelled" : $"brainseg: {(code == ExitCodes.Failure ? "failed" : "error")}: {OneLine(e.Message)}");
        if (debug)
            stderr.WriteLine(e);
        return code;
    }

    static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException or TypeInitializationException && e.InnerException is not null)
            e = e.InnerException!;
        return e;
    }

    /// <summary>
    /// 2 for what the user can fix: a refused request (<see cref="BadInputException"/>, which image, checkpoint
    /// and option errors are), a malformed file, a file or folder that cannot be read or written, a missing
    /// GPU, NVIDIA library or GPU memory. 1 for a result that failed (training diverged, cancelled).
    /// 70 for everything else: a broken invariant of brainseg (ArgumentException, InvalidOperationException,
    /// a failing CUDA call, ...), printed with its stack trace.
    /// </summary>
    public static int ExitCodeOf(Exception e) => e switch
    {
        BadInputException or InvalidDataException => ExitCodes.UsageError,
        IOException or UnauthorizedAccessException => ExitCodes.UsageError, // not found, access denied, disk full
        DllNotFoundException or EntryPointNotFoundException or CudaUnavailableException => ExitCodes.UsageError,
        CudaException { ErrorName: "CUDA_ERROR_OUT_OF_MEMORY" } => ExitCodes.UsageError,
        TrainingDivergedException or OperationCanceledException => ExitCodes.Failure,
        _ => ExitCodes.InternalError,
    };

    /// <summary>True for what <see cref="ExitCodeOf"/> reports as the user's to fix (exit 2): a cohort records such an image as failed and goes on.</summary>
    public static bool IsUserError(Exception e) => ExitCodeOf(e) == ExitCodes.UsageError;

    static string OneLine(string message)
    {
        string[] lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : string.Join(" ", lines);
    }
}
