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

/// <summary>
/// The int8 network's Predict with the fused kernels (direct conv1, conv2 pooled a band of rows at a time, a single
/// image's bands split between threads) against the same network run layer by layer as before them
/// (<see cref="QuantizedNetwork.Unfused"/>: every convolution through the GEMM, pooling as its own pass, one thread per
/// sample), in the same run; and with a single sample's conv2 bands split between the threads
/// (<see cref="QuantizedNetwork.SplitSingleSample"/>). All compute the same bytes (tests assert it).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Int8FusedBenchmarks
{
    private QuantizedNetwork _fused = null!, _unfused = null!, _split = null!;
    private float[] _input = null!, _logits = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    /// <summary>Threads the network may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        var calibration = new InMemoryBatches(BenchmarkInputs.Images(64).Data.ToArray(), [1, 32, 32]);
        _fused = Quantizer.Quantize(network, calibration, 64, 0f, 1f);
        _fused.SplitSingleSample = false;
        _unfused = Quantizer.Quantize(network, calibration, 64, 0f, 1f);
        _unfused.Unfused = true;
        _split = Quantizer.Quantize(network, calibration, 64, 0f, 1f);
        _split.SplitSingleSample = true;
        _input = BenchmarkInputs.Images(Batch).Data.ToArray();
        _logits = new float[Batch * 10];
    }

    /// <summary>Layer by layer, as before the fused kernels.</summary>
    [Benchmark(Baseline = true)]
    public float[] Unfused()
    {
        _unfused.Predict(_input, Batch, _logits, Threads);
        return _logits;
    }

    /// <summary>Direct conv1, conv2 fused with its pooling; a single sample on one thread.</summary>
    [Benchmark]
    public float[] Fused()
    {
        _fused.Predict(_input, Batch, _logits, Threads);
        return _logits;
    }

    /// <summary>As <see cref="Fused"/>, with a single sample's conv2 bands split between the threads (the default).</summary>
    [Benchmark]
    public float[] FusedSplitSingleSample()
    {
        _split.Predict(_input, Batch, _logits, Threads);
        return _logits;
    }
}

/// <summary>
/// The two int8 stages the fused kernels replace, batch 64, one thread, each against its old form in the same run:
/// conv1 through the GEMM then requantization (baseline) against the direct kernel; conv2 then the separate 4x4
/// pooling (baseline) against conv2 pooled a band at a time.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Int8StageBenchmarks
{
    private const int Batch = 64;
    private QuantizedConv2d _conv = null!;
    private QuantizedAvgPool2d? _pool;
    private byte[] _codes = null!, _convOutput = null!, _output = null!;
    private int[] _shape = null!, _convShape = null!;
    private readonly QuantizedWorkspace _workspace = new();
    private QuantizedWorkspace[] _workspaces = null!;

    /// <summary>conv1 (direct kernel) or conv2 (with the pooling fused).</summary>
    [Params("conv1", "conv2+pool")]
    public string Stage { get; set; } = "conv1";

    [GlobalSetup]
    public void Setup()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        FloatTensor images = BenchmarkInputs.Images(Batch);
        QuantizedNetwork quantized = Quantizer.Quantize(network, new InMemoryBatches(images.Data.ToArray(), [1, 32, 32]), Batch, 0f, 1f);
        var trace = quantized.Trace(images.Data, Batch);
        int index = Stage == "conv1" ? 0 : quantized.Layers.ToList().FindIndex(l => l.Name == "conv2");
        _conv = (QuantizedConv2d)quantized.Layers[index];
        _pool = Stage == "conv1" ? null : (QuantizedAvgPool2d)quantized.Layers[index + 1];
        _codes = trace[index].Codes;
        _shape = trace[index].SampleShape;
        _convShape = trace[index + 1].SampleShape;
        _convOutput = new byte[trace[index + 1].Codes.Length];
        _output = new byte[trace[_pool is null ? index + 1 : index + 2].Codes.Length];
        _workspaces = [_workspace];
    }

    /// <summary>GEMM, requantization (and pooling) as separate passes.</summary>
    [Benchmark(Baseline = true)]
    public byte[] Separate()
    {
        _conv.ForwardViaGemm(_codes, _shape, Batch, _convOutput, _workspace);
        if (_pool is null)
        {
            return _convOutput;
        }
        _pool.Forward(_convOutput, _convShape, Batch, _output, _workspace);
        return _output;
    }

    /// <summary>The direct kernel (conv1) or the band-pooled convolution (conv2).</summary>
    [Benchmark]
    public byte[] Fused()
    {
        if (_pool is null)
        {
            _conv.Forward(_codes, _shape, Batch, _convOutput, _workspace);
            return _convOutput;
        }
        _conv.ForwardPooled(_codes, _shape, Batch, _pool.KernelSize, _output, _workspaces, 0, 1);
        return _output;
    }
}
