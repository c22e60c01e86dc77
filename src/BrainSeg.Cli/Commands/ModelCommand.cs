using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using BrainSeg.Cli.Common;
using BrainSeg.Engine;
using BrainSeg.Engine.Cpu;
using BrainSeg.Mri;
using BrainSeg.Mri.Labels;
using BrainSeg.Seg.Networks;

namespace BrainSeg.Cli.Commands;

/// <summary>`brainseg model`: a network's parameter count, receptive field, training sizes and layer table.</summary>
internal static class ModelCommand
{
    private static readonly string[] Nets = ["fcn", "dilated", "disc"];

    public static Command Create()
    {
        var net = Opt.Choice("--net", "Which network: fcn (fully convolutional), dilated, or disc (discriminator).", "fcn", Nets);
        net.Required = true;
        var classes = Opt.Int("--classes", "Number of classes C including background (7 for the adult data, 8 for the elderly)", 2, LabelTable.MaxClasses, 7);
        classes.Aliases.Add("-c");
        var gamma = new Option<bool>("--bn-scale") { Description = "Add a learnable batch-norm scale γ to every hidden layer (not in the paper)." };
        var json = new Option<bool>("--json") { Description = "Print the description as JSON." };

        var command = new Command("model", "Describe a network: trainable parameters, receptive field, training input and output sizes, and one row per layer.");
        command.Options.Add(net);
        command.Options.Add(classes);
        command.Options.Add(gamma);
        command.Options.Add(json);
        command.SetAction(parseResult =>
        {
            var options = new NetworkOptions { BatchNormScale = parseResult.GetValue(gamma) };
            // Parameters are built on the CPU: describing a network needs no GPU.
            using var network = Build(parseResult.GetValue(net)!, CpuBackend.Instance, parseResult.GetValue(classes), options);
            Console.Out.Write(parseResult.GetValue(json) ? ToJson(network) : ToText(network));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Builds a network by its command-line name.</summary>
    internal static INetwork Build(string name, IBackend backend, int classes, NetworkOptions options) => name switch
    {
        "fcn" => new FcnNetwork(backend, classes, options),
        "dilated" => new DilatedNetwork(backend, classes, options),
        "disc" => new Discriminator(backend, classes, options),
        _ => throw new BadInputException($"unknown network '{name}': use {string.Join(", ", Nets)}"),
    };

    internal static string ToText(INetwork n)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"{n.Title}, C = {n.Classes}");
        sb.Append(inv, $"trainable parameters: {n.ParameterCount:N0}");
        if (n.BatchNormScaleCount > 0) sb.Append(inv, $" (including {n.BatchNormScaleCount:N0} batch-norm scales γ; {n.ParameterCount - n.BatchNormScaleCount:N0} without)");
        sb.AppendLine();
        sb.AppendLine(inv, $"receptive field: {n.ReceptiveField}×{n.ReceptiveField}");
        sb.AppendLine(inv, $"training input: {n.TrainingInputSize}×{n.TrainingInputSize} → output {n.TrainingOutputSize}×{n.TrainingOutputSize}");
        sb.AppendLine();

        var rows = n.Summarize();
        string[] header = ["layer", "kind", "input", "output", "parameters"];
        var cells = rows.Select(r => new[] { r.Name, r.Kind, r.Input.ToString(), r.Output.ToString(), r.Parameters.ToString("N0", inv) }).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(i => cells.Select(c => c[i].Length).Append(header[i].Length).Max()).ToArray();
        string Line(string[] c) => string.Join("  ", c.Select((s, i) => i == c.Length - 1 ? s.PadLeft(widths[i]) : s.PadRight(widths[i]))).TrimEnd();
        sb.AppendLine(Line(header));
        foreach (var c in cells) sb.AppendLine(Line(c));
        sb.AppendLine(Line(["total", "", "", "", n.ParameterCount.ToString("N0", inv)]));
        return sb.ToString();
    }

    // Written with Utf8JsonWriter: no reflection, so NativeAOT stays warning-free.
    internal static string ToJson(INetwork n)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("network", n.Title);
            w.WriteNumber("classes", n.Classes);
            w.WriteNumber("parameters", n.ParameterCount);
            w.WriteNumber("batchNormScaleParameters", n.BatchNormScaleCount);
            w.WriteNumber("receptiveField", n.ReceptiveField);
            w.WriteNumber("trainingInputSize", n.TrainingInputSize);
            w.WriteNumber("trainingOutputSize", n.TrainingOutputSize);
            w.WriteStartArray("layers");
            foreach (var r in n.Summarize())
            {
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteString("kind", r.Kind);
                WriteShape(w, "input", r.Input);
                WriteShape(w, "output", r.Output);
                w.WriteNumber("parameters", r.Parameters);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + Environment.NewLine;
    }

    private static void WriteShape(Utf8JsonWriter w, string name, Shape shape)
    {
        w.WriteStartArray(name);
        foreach (var d in shape) w.WriteNumberValue(d);
        w.WriteEndArray();
    }
}
