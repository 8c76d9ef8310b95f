using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Benchmarks;

/// <summary>
/// Float against int8 inference of the seed network in the same run, batch 1 and 64, 1 and 2 threads: the float
/// network's forward pass (the baseline) and the int8 network's Predict (quantize the input, integer layers, logits).
/// The int8 network is calibrated on the benchmark's own images (the timing does not depend on the values).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Int8VersusFloatBenchmarks
{
    private Sequential _network = null!;
    private QuantizedNetwork _quantized = null!;
    private FloatTensor _input = null!;
    private float[] _logits = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    /// <summary>Threads the kernels may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _network = SeedNetwork.Create(seed: 1);
        _network.Threads = Threads;
        _input = BenchmarkInputs.Images(Batch);
        _quantized = Quantizer.Quantize(_network, new InMemoryBatches(BenchmarkInputs.Images(64).Data.ToArray(), [1, 32, 32]), 64, 0f, 1f);
        _logits = new float[Batch * 10];
    }

    /// <summary>Float logits.</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor Float() => _network.Forward(_input);

    /// <summary>Int8 logits.</summary>
    [Benchmark]
    public float[] Int8()
    {
        _quantized.Predict(_input.Data, Batch, _logits, Threads);
        return _logits;
    }
}

/// <summary>
/// conv2 alone (32 -> 64 channels, 3x3, 32x32 images, 18.9 M multiply-accumulates per image), batch 64, one thread:
/// the float layer against the int8 layer (pack, exact int8 GEMM, requantize with fused ReLU). GOP/s = 2 x 18.87 M x 64 / time.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Conv2LayerBenchmarks
{
    private Conv2d _float = null!;
    private QuantizedConv2d _int8 = null!;
    private FloatTensor _input = null!;
    private byte[] _codes = null!, _output = null!;
    private readonly QuantizedWorkspace _workspace = new();

    [GlobalSetup]
    public void Setup()
    {
        _float = new Conv2d(32, 64, 3, 1, 1) { Threads = 1 };
        _float.Initialize(new SeededRandom(3));
        _input = new FloatTensor(64, 32, 32, 32);
        var random = new SeededRandom(4);
        for (int i = 0; i < _input.Length; i++)
        {
            _input.Data[i] = random.NextUniform(0f, 1f);
        }
        var activation = QuantParams.Asymmetric(0f, 1f, 0, 255);
        var w = Quantizer.QuantizeWeights(_float.Weight.Value.Data, 64, perChannel: true);
        _int8 = new QuantizedConv2d("conv2", activation, QuantParams.Asymmetric(0f, 4f, 0, 255), w.Codes, [64, 32, 3, 3], w.Scales, w.ZeroPoints,
            Quantizer.QuantizeBias(_float.Bias.Value.Data, activation, w.Scales), fusedRelu: true, stride: 1, padding: 1);
        _codes = new byte[_input.Length];
        Kernels.QuantizeF32.ToUInt8(_input.Data, activation, _codes);
        _output = new byte[64 * 64 * 32 * 32];
    }

    /// <summary>Float convolution (implicit GEMM, Vector256 FMA).</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor Float() => _float.Forward(_input);

    /// <summary>Int8 convolution with requantization.</summary>
    [Benchmark]
    public byte[] Int8()
    {
        _int8.Forward(_codes, [32, 32, 32], 64, _output, _workspace);
        return _output;
    }
}
