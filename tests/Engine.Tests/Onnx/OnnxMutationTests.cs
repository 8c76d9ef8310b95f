using Engine.Onnx;

namespace Engine.Tests.Onnx;

/// <summary>
/// Damaged files: every truncation point and hundreds of bit flips of a small float and a small int8 model must give
/// either a model or an InvalidDataException, never another exception (an index out of range, an overflow, an
/// out-of-memory from a length taken on trust).
/// </summary>
public sealed class OnnxMutationTests
{
    private static byte[] FloatModel() => OnnxExporter.Export(OnnxTestNetworks.Tiny(), OnnxTestNetworks.TinyInput, 0.1f, 0.3f);

    private static byte[] Int8Model() => OnnxExporter.Export(OnnxTestNetworks.Quantize(OnnxTestNetworks.Tiny(), OnnxTestNetworks.TinyInput));

    public static TheoryData<string> Models => ["float", "int8"];

    private static byte[] Model(string kind) => kind == "float" ? FloatModel() : Int8Model();

    private static void LoadsOrRefuses(byte[] bytes, string what)
    {
        try
        {
            OnnxImport imported = OnnxModel.Load(bytes, "mutated.onnx");
            Assert.True(imported.Float is not null ^ imported.Int8 is not null, what);
        }
        catch (InvalidDataException e)
        {
            Assert.Contains("mutated.onnx", e.Message);
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Every_truncation_is_refused_as_a_format_error(string kind)
    {
        byte[] model = Model(kind);
        Assert.NotNull(OnnxModel.Load(model, "whole.onnx"));
        // Every cut through the first 200 bytes (headers, nodes), then 200 cuts spread over the rest.
        var cuts = Enumerable.Range(0, Math.Min(200, model.Length))
            .Concat(Enumerable.Range(0, 200).Select(i => 200 + (int)((long)(model.Length - 201) * i / 200)))
            .Where(c => c < model.Length).Distinct();
        foreach (int cut in cuts)
        {
            LoadsOrRefuses(model[..cut], $"{kind} cut at {cut} of {model.Length}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Bit_flips_load_or_are_refused_as_format_errors(string kind)
    {
        byte[] model = Model(kind);
        var random = new SeededRandom(kind == "float" ? 17UL : 19UL);
        for (int i = 0; i < 300; i++)
        {
            byte[] mutated = (byte[])model.Clone();
            int flips = 1 + (int)(random.NextUniform(0f, 1f) * 3);
            for (int f = 0; f < flips; f++)
            {
                int position = Math.Min(mutated.Length - 1, (int)(random.NextUniform(0f, 1f) * mutated.Length));
                mutated[position] ^= (byte)(1 << Math.Min(7, (int)(random.NextUniform(0f, 1f) * 8)));
            }
            LoadsOrRefuses(mutated, $"{kind} mutation {i}");
        }
    }

    [Fact]
    public void Huge_declared_lengths_and_dimensions_are_refused_before_allocating()
    {
        // A graph field claiming 2^40 bytes, and a tensor claiming 2^20 x 2^20 elements with 4 bytes of data.
        byte[] huge = [0x3A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
        var e = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(huge, "huge.onnx"));
        Assert.Contains("runs past the end", e.Message);

        var g = new OnnxGraphBuilder();
        g.Raw("big", OnnxDataType.Float, [1 << 20, 1 << 20], new byte[4]);
        g.Node("Relu", "r", ["x"], ["y"]).Input("x", OnnxDataType.Float, "N", 4).Output("y", OnnxDataType.Float, "N", 4);
        e = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(g.Build(), "big.onnx"));
        Assert.Contains("'big'", e.Message);
    }

    [Fact]
    public void Long_graphs_listed_backwards_resolve_in_linear_time()
    {
        // 20,000 Relu nodes from input to output and 20,000 Identity nodes over a Constant, all listed last to first
        // with names that are not identifiers: ordering, folding and naming must not be quadratic.
        const int n = 20_000;
        var g = new OnnxGraphBuilder();
        for (int i = n - 1; i >= 0; i--)
        {
            g.Node("Relu", $"/relu/{i}", [i == 0 ? "x" : $"r{i - 1}"], [i == n - 1 ? "y" : $"r{i}"]);
            g.Node("Identity", $"/id/{i}", [i == 0 ? "k" : $"k{i - 1}"], [$"k{i}"]);
        }
        g.Node("Constant", "k_constant", [], ["k"], OnnxAttribute.FloatTensor("value", [1], 2f));
        g.Input("x", OnnxDataType.Float, "N", 3).Output("y", OnnxDataType.Float, "N", 3);
        byte[] model = g.Build();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        OnnxImport imported = OnnxModel.Load(model, "long.onnx");
        Assert.Equal(n, imported.Float!.Layers.Count);
        Assert.Equal("relu20000", imported.Float.Layers[^1].Name);
        // 7.5 s under a load of 20 on two cores; the quadratic folding this replaced (one pass over all pending nodes
        // per folded node) took 190 s in the same conditions.
        Assert.True(clock.Elapsed.TotalSeconds < 30, $"{clock.Elapsed.TotalSeconds:F1} s to read {n} + {n} nodes");
    }
}
