using System.CommandLine;
using System.CommandLine.Parsing;

namespace BrainSeg.Cli.Common;

/// <summary>
/// Parses, invokes and turns failures into exit codes, so that every verb behaves alike:
/// a usage error or a user-facing exception prints one line <c>brainseg: error: ...</c> and exits 2;
/// only a defect in brainseg itself prints a stack trace.
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

    static int ReportParseErrors(ParseResult parsed, TextWriter stderr)
    {
        foreach (ParseError error in parsed.Errors)
            stderr.WriteLine($"brainseg: error: {error.Message}");
        // --help clears parse errors, so 'brainseg no-such-verb --help' leaves only unmatched tokens behind.
        if (parsed.Errors.Count == 0)
            foreach (string token in parsed.UnmatchedTokens)
                stderr.WriteLine($"brainseg: error: unrecognized command or argument '{token}'");
        stderr.WriteLine($"Run '{CommandPath(parsed.CommandResult)} --help' for usage.");
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
        if (IsUserError(e))
        {
            stderr.WriteLine($"brainseg: error: {OneLine(e.Message)}");
            if (debug)
                stderr.WriteLine(e);
            return ExitCodes.UsageError;
        }
        if (e is OperationCanceledException)
        {
            stderr.WriteLine("brainseg: cancelled");
            return ExitCodes.Failure;
        }
        stderr.WriteLine($"brainseg: internal error: {e.GetType().Name}: {OneLine(e.Message)}");
        stderr.WriteLine(e);
        return ExitCodes.InternalError;
    }

    static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } or System.Reflection.TargetInvocationException && e.InnerException is not null)
            e = e.InnerException!;
        return e;
    }

    /// <summary>
    /// Errors the user can fix: bad input, missing or unreadable files, a missing GPU or NVIDIA library.
    /// The project's own exceptions (namespace BrainSeg.*) are written to carry a message that names the
    /// problem and the fix, so they count as user-facing too.
    /// </summary>
    public static bool IsUserError(Exception e) => e switch
    {
        ArgumentException or FormatException or InvalidDataException or NotSupportedException => true,
        IOException or UnauthorizedAccessException => true, // FileNotFound, DirectoryNotFound, EndOfStream, ...
        DllNotFoundException or EntryPointNotFoundException => true,
        _ => e.GetType().Namespace?.StartsWith("BrainSeg", StringComparison.Ordinal) == true,
    };

    static string OneLine(string message)
    {
        string[] lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : string.Join(" ", lines);
    }
}
