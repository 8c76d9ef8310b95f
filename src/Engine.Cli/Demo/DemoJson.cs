using System.Text.Json;
using System.Text.Json.Serialization;

namespace Engine.Cli.Demo;

/// <summary>
/// demo.json: <see cref="DemoResults"/> as System.Text.Json writes it, keys in snake_case (<c>pruning_sweep</c>,
/// <c>accuracy_after_fine_tune</c>), indented; a sweep point that was not fine-tuned holds the string "NaN"
/// (docs/command-line.md, "demo").
/// </summary>
internal static class DemoJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    public static byte[] ToBytes(DemoResults results) => JsonSerializer.SerializeToUtf8Bytes(results, Options);

    /// <summary>The record read back from demo.json (for example to draw the report again without training).</summary>
    public static DemoResults Read(string path) =>
        JsonSerializer.Deserialize<DemoResults>(File.ReadAllBytes(path), Options) ?? throw new InvalidDataException($"{path} holds no demo results.");
}
