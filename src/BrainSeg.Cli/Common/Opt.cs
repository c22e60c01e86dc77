using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace BrainSeg.Cli.Common;

/// <summary>
/// Options whose values are checked while parsing, so a bad value is a parse error (one line, exit 2)
/// before any validator or action reads it: numbers with a stated range, choices from a fixed list, and
/// every option at most once.
/// </summary>
public static class Opt
{
    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Option<int> Int(string name, string description, int min, int max, int defaultValue) =>
        WithDefault(Number(new Option<int>(name), description, min, max, Parse<int>), defaultValue);

    /// <summary>A whole number in [<paramref name="min"/>, <paramref name="max"/>], or null when not given.</summary>
    public static Option<int?> OptionalInt(string name, string description, int min, int max) =>
        Number(new Option<int?>(name), description, min, max, t => Parse<int>(t) is { } v ? v : null);

    /// <summary>A finite real number in [<paramref name="min"/>, <paramref name="max"/>] (above <paramref name="min"/> when <paramref name="minExclusive"/>).</summary>
    public static Option<double> Real(string name, string description, double min, double max, double defaultValue, bool minExclusive = false) =>
        WithDefault(Number(new Option<double>(name), description, min, max, Parse<double>, minExclusive), defaultValue);

    public static Option<double?> OptionalReal(string name, string description, double min, double max, bool minExclusive = false) =>
        Number(new Option<double?>(name), description, min, max, t => Parse<double>(t) is { } v ? v : null, minExclusive);

    /// <summary>A seed: any whole number from 0 to 2^64 − 1.</summary>
    public static Option<ulong> Seed(string name, string description, ulong defaultValue) =>
        WithDefault(Number(new Option<ulong>(name), description, 0UL, ulong.MaxValue, Parse<ulong>), defaultValue);

    /// <summary>One of <paramref name="choices"/> (compared ignoring case, returned as listed).</summary>
    public static Option<string> Choice(string name, string description, string defaultValue, params string[] choices)
    {
        var option = new Option<string>(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = string.Join("|", choices) };
        option.CustomParser = r =>
        {
            if (Single(r, name) is not { } text) return defaultValue;
            string? match = choices.FirstOrDefault(c => string.Equals(c, text.Trim(), StringComparison.OrdinalIgnoreCase));
            if (match is null) r.AddError($"{name} takes one of {string.Join(", ", choices)}; got '{text}'.");
            return match ?? defaultValue;
        };
        return option;
    }

    /// <summary>Makes any option refuse being given twice (the second value would otherwise silently win or fail later).</summary>
    public static Option<T> Once<T>(this Option<T> option)
    {
        option.Validators.Add(r =>
        {
            if (r.IdentifierTokenCount > 1) r.AddError($"{option.Name} is given {r.IdentifierTokenCount} times; give it once.");
        });
        return option;
    }

    static Option<T> WithDefault<T>(Option<T> option, T value)
    {
        option.DefaultValueFactory = _ => value;
        return option;
    }

    static Option<T> Number<T, TValue>(Option<T> option, string description, TValue min, TValue max, Func<string, TValue?> parse, bool minExclusive = false)
        where TValue : struct, INumber<TValue>
    {
        string range = minExclusive ? $"above {Show(min)} and at most {Show(max)}" : $"from {Show(min)} to {Show(max)}";
        string kind = typeof(TValue) == typeof(double) ? "a number" : "a whole number";
        option.Description = $"{description} ({kind} {range})";
        option.CustomParser = r =>
        {
            if (Single(r, option.Name) is not { } text) return default!;
            TValue? value = parse(text);
            if (value is not { } v || (minExclusive ? v <= min : v < min) || v > max)
                r.AddError($"{option.Name} takes {kind} {range}; got '{text}'.");
            return value is { } ok ? (T)(object)ok : default!;
        };
        return option;
    }

    /// <summary>The option's one value; an error when it is given more than once.</summary>
    static string? Single(ArgumentResult r, string name)
    {
        if (r.Tokens.Count == 1) return r.Tokens[0].Value;
        if (r.Tokens.Count > 1) r.AddError($"{name} is given {r.Tokens.Count} times; give it once.");
        return null;
    }

    /// <summary>Invariant culture, no thousands separators; NaN and infinities never parse as values.</summary>
    static TValue? Parse<TValue>(string text) where TValue : struct, INumber<TValue> =>
        TValue.TryParse(text.Trim(), typeof(TValue) == typeof(double) ? NumberStyles.Float : NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
            && (v is not double d || double.IsFinite(d)) ? v : null;

    static string Show<TValue>(TValue v) where TValue : INumber<TValue> =>
        v is ulong u && u == ulong.MaxValue ? "2^64 − 1" : v.ToString(null, CultureInfo.InvariantCulture);
}
