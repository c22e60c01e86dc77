using System.CommandLine;
using System.CommandLine.Help;
using BrainSeg.Cli.Common;

namespace BrainSeg.Cli;

public static class Program
{
    public static int Main(string[] args) => CliHost.Run(CreateRoot(), args);

    /// <summary>The verbs of <c>brainseg</c>; each lives in Commands/ as <c>XCommand.Create()</c>.</summary>
    internal static RootCommand CreateRoot()
    {
        var root = new RootCommand("brainseg: train and run the brain-MRI segmentation networks of Moeskops et al. (2017) on NVIDIA GPUs or the CPU.");
        Command[] verbs =
        [
            // Registered verbs, in the order --help lists them.
            Commands.ModelCommand.Create(),
            Commands.GradcheckCommand.Create(),
            Commands.InfoCommand.Create(),
            Commands.NiftiInfoCommand.Create(),
            Commands.TrainCommand.Create(),
            Commands.SegmentCommand.Create(),
            Commands.EvaluateCommand.Create(),
            Commands.CompareCommand.Create(),
            Commands.ExperimentCommand.Create(),
            Commands.DemoCommand.Create(),
            Commands.BenchCommand.Create(),
        ];
        foreach (var verb in verbs)
            root.Subcommands.Add(verb);

        // 'brainseg' alone is a usage error: show what it can do, and say so in the exit code.
        root.SetAction(parsed =>
        {
            new HelpAction().Invoke(parsed);
            parsed.InvocationConfiguration.Error.WriteLine("brainseg: error: no verb given; pick one of the commands above.");
            return ExitCodes.UsageError;
        });
        return root;
    }
}
