using System.CommandLine;
using System.Globalization;
using BrainSeg.Mri;

namespace BrainSeg.Cli.Common;

/// <summary>What <c>--device</c> names: the CPU, a CUDA device by ordinal, or the best available.</summary>
public enum DeviceKind { Auto, Cpu, Cuda }

/// <summary>A parsed <c>--device</c> value: "cpu", "cuda" (= cuda:0), "cuda:N" or "auto".</summary>
public readonly record struct DeviceSpec(DeviceKind Kind, int Ordinal = 0)
{
    public const string Syntax = "cpu | cuda | cuda:N | auto";

    /// <summary>Parses a device name; throws <see cref="ArgumentException"/> naming the accepted forms.</summary>
    public static DeviceSpec Parse(string text)
    {
        if (TryParse(text, out var spec))
            return spec;
        throw new BadInputException($"unknown device '{text}': use {Syntax} (N is the CUDA device number, 0 first)");
    }

    public static bool TryParse(string? text, out DeviceSpec spec)
    {
        spec = default;
        string t = (text ?? "").Trim().ToLowerInvariant();
        switch (t)
        {
            case "auto": spec = new(DeviceKind.Auto); return true;
            case "cpu": spec = new(DeviceKind.Cpu); return true;
            case "cuda" or "gpu": spec = new(DeviceKind.Cuda, 0); return true;
        }
        if (t.StartsWith("cuda:", StringComparison.Ordinal)
            && int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int ordinal))
        {
            spec = new(DeviceKind.Cuda, ordinal);
            return true;
        }
        return false;
    }

    public override string ToString() => Kind switch
    {
        DeviceKind.Cpu => "cpu",
        DeviceKind.Cuda => $"cuda:{Ordinal}",
        _ => "auto",
    };
}

/// <summary>The shared <c>--device</c> option, so that every verb spells and validates it alike.</summary>
public static class DeviceOption
{
    /// <summary>
    /// A <c>--device</c> option (alias <c>-d</c>) whose value is validated at parse time, so a bad
    /// device name exits 2 with a message before any work starts. Read it with
    /// <c>parseResult.GetValue(option)</c> and open it with <c>Devices.Open</c>.
    /// </summary>
    public static Option<string> Create(string defaultValue = "auto", string? description = null)
    {
        var option = new Option<string>("--device", "-d")
        {
            Description = description ?? $"Where to compute: {DeviceSpec.Syntax}. 'auto' uses CUDA device 0 when it works and the CPU otherwise.",
            HelpName = "device",
            DefaultValueFactory = _ => defaultValue,
        };
        option.Validators.Add(result =>
        {
            string? value = result.GetValueOrDefault<string>();
            if (!DeviceSpec.TryParse(value, out _))
                result.AddError($"unknown device '{value}' for --device: use {DeviceSpec.Syntax}");
        });
        return option;
    }
}
