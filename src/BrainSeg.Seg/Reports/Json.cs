using System.Text;
using System.Text.Json;

namespace BrainSeg.Seg.Reports;

/// <summary>JSON documents as text: indented files ending in a line break, or one line; and one error message for any unreadable evaluation.</summary>
internal static class Json
{
    public static string Write(Action<Utf8JsonWriter> write, bool indented = true)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented }))
            write(json);
        return Encoding.UTF8.GetString(buffer.ToArray()) + (indented ? "\n" : "");
    }

    public static T Read<T>(string text, string source, Func<JsonElement, T> read)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return read(doc.RootElement);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{source}: unreadable evaluation JSON ({e.Message}). Give files written by 'brainseg evaluate --json'.", e);
        }
    }
}
