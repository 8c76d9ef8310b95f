using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;

namespace Engine.Benchmarks;

/// <summary>
/// fc1 alone (4,096 -> 128, fused ReLU, 96% of the seed network's weights), one thread: 8-bit codes in int8 panels
/// (<see cref="GemmS8U8"/>, the baseline) against the same layer quantized at 4 bits, its codes packed eight to an
/// int32 and unpacked in registers (<see cref="GemmS4U8"/>), in the same run. Both pack the batch and requantize alike.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Int4LinearBenchmarks
{
    private QuantizedLinear _eight = null!, _four = null!;
    private byte[] _codes = null!, _output = null!;
    private readonly QuantizedWorkspace _workspace = new();

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var fc1 = new Linear(4096, 128);
        fc1.Initialize(new SeededRandom(3));
        var activation = QuantParams.Asymmetric(0f, 1f, 0, 255);
        var output = QuantParams.Asymmetric(0f, 4f, 0, 255);
        _eight = Layer(fc1, activation, output, 8);
        _four = Layer(fc1, activation, output, 4);
        var random = new SeededRandom(4);
        _codes = new byte[Batch * 4096];
        for (int i = 0; i < _codes.Length; i++)
        {
            _codes[i] = (byte)random.NextInt(256);
        }
        _output = new byte[Batch * 128];
    }

    private static QuantizedLinear Layer(Linear fc1, QuantParams activation, QuantParams output, int bits)
    {
        var w = Quantizer.QuantizeWeights(fc1.Weight.Value.Data, 128, perChannel: true, bits);
        return new QuantizedLinear("fc1", activation, output, w.Codes, [128, 4096], w.Scales, w.ZeroPoints,
            Quantizer.QuantizeBias(fc1.Bias.Value.Data, activation, w.Scales), fusedRelu: true, weightBits: bits);
    }

    /// <summary>8-bit codes, int8 panels.</summary>
    [Benchmark(Baseline = true)]
    public byte[] Eight()
    {
        _eight.Forward(_codes, [4096], Batch, _output, _workspace);
        return _output;
    }

    /// <summary>4-bit codes, nibble panels.</summary>
    [Benchmark]
    public byte[] Four()
    {
        _four.Forward(_codes, [4096], Batch, _output, _workspace);
        return _output;
    }
}

/// <summary>
/// The whole seed int8 network's Predict, one thread: every layer at 8 bits (the baseline) against fc1 and conv2 at
/// 4 bits (fc1 on nibble panels; conv2's 4-bit codes widened into the int8 panels of its kernels at construction), in
/// the same run.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Int4NetworkBenchmarks
{
    private QuantizedNetwork _eight = null!, _four = null!;
    private float[] _input = null!, _logits = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        var calibration = new InMemoryBatches(BenchmarkInputs.Images(64).Data.ToArray(), [1, 32, 32]);
        _eight = Quantizer.Quantize(network, calibration, 64, 0f, 1f);
        _four = Quantizer.Quantize(network, calibration, 64, 0f, 1f,
            new QuantizationOptions { LayerWeightBits = new Dictionary<string, int> { ["fc1"] = 4, ["conv2"] = 4 } });
        _input = BenchmarkInputs.Images(Batch).Data.ToArray();
        _logits = new float[Batch * 10];
    }

    /// <summary>Every layer at 8 bits.</summary>
    [Benchmark(Baseline = true)]
    public float[] Eight()
    {
        _eight.Predict(_input, Batch, _logits, 1);
        return _logits;
    }

    /// <summary>fc1 and conv2 at 4 bits.</summary>
    [Benchmark]
    public float[] Four()
    {
        _four.Predict(_input, Batch, _logits, 1);
        return _logits;
    }
}
