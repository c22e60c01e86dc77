using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BrainSeg.Cli.Common;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Cli.Commands;

/// <summary>
/// `brainseg gradcheck`: the gradient check of every op and of each whole network (float64, central
/// differences) on the chosen device; one row per check; exit 0 only if all pass.
/// </summary>
internal static class GradcheckCommand
{
    public static Command Create()
    {
        var device = DeviceOption.Create("cpu", $"Backend to check: {DeviceSpec.Syntax}.");
        var json = new Option<bool>("--json") { Description = "Print the results as JSON." };
        var command = new Command("gradcheck",
            "Check the analytic gradients of every op and of the three networks (C = 3, batch 2, float64) against central finite differences; exit 0 only if all pass.");
        command.Options.Add(device);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            using var backend = Devices.Open(parseResult.GetValue(device)!);
            var asJson = parseResult.GetValue(json);
            var inv = CultureInfo.InvariantCulture;
            var rows = new List<(GradCheckRow Row, double Seconds)>();
            if (!asJson)
                Console.Out.WriteLine($"gradient checks on {backend.Name} (float64, central differences)\n{"check",-76} {"mode",-17} {"max rel err",11} {"tolerance",9}  result");
            foreach (var c in GradCheckSuite.Cases)
            {
                var clock = Stopwatch.StartNew();
                var row = GradCheckSuite.Row(c.Name, c.Run(backend));
                rows.Add((row, clock.Elapsed.TotalSeconds));
                if (!asJson)
                    Console.Out.WriteLine(string.Create(inv, $"{row.Name,-76} {row.Mode,-17} {row.MaxRelativeError,11:0.00e+00} {row.Tolerance,9:g2}  {(row.Passed ? "pass" : "FAIL")}"));
            }
            var failed = rows.Count(r => !r.Row.Passed);
            if (asJson) Console.Out.Write(ToJson(backend.Name, rows));
            else
            {
                foreach (var (row, _) in rows.Where(r => !r.Row.Passed)) Console.Out.WriteLine($"\n{row.Name}: {row.Details}");
                Console.Out.WriteLine($"\n{rows.Count - failed} passed, {failed} failed");
            }
            return failed == 0 ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }

    private static string ToJson(string device, List<(GradCheckRow Row, double Seconds)> rows)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("device", device);
            w.WriteBoolean("passed", rows.All(r => r.Row.Passed));
            w.WriteStartArray("checks");
            foreach (var (r, seconds) in rows)
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("mode", r.Mode);
                w.WriteNumber("maxRelativeError", r.MaxRelativeError);
                w.WriteNumber("maxAbsoluteError", r.MaxAbsoluteError);
                w.WriteNumber("tolerance", r.Tolerance);
                w.WriteBoolean("passed", r.Passed);
                w.WriteNumber("seconds", Math.Round(seconds, 3));
                w.WriteString("details", r.Details);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + Environment.NewLine;
    }
}
