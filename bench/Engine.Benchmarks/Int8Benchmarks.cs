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

/// <summary>
/// Where the int8 network's time goes at batch 64 on one thread: the whole Predict, then each stage alone on the codes
/// the network feeds it (input quantization, conv1 direct, conv2 with its pooling fused, fc1, fc2 to int32 logits).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[MinColumn]
public class Int8LayerProfileBenchmarks
{
    private const int Batch = 64;
    private QuantizedNetwork _network = null!;
    private QuantizedConv2d _conv1 = null!, _conv2 = null!;
    private QuantizedLinear _fc1 = null!, _fc2 = null!;
    private int _pool;
    private float[] _images = null!, _logits = null!;
    private byte[] _inputCodes = null!, _conv1Codes = null!, _conv2Codes = null!, _fc1Codes = null!, _output = null!;
    private byte[] _bordered = null!, _packed = null!;
    private int[] _conv1Shape = null!, _conv2Shape = null!;
    private readonly QuantizedWorkspace _workspace = new();
    private QuantizedWorkspace[] _workspaces = null!;

    [GlobalSetup]
    public void Setup()
    {
        Sequential seed = SeedNetwork.Create(seed: 1);
        _images = BenchmarkInputs.Images(Batch).Data.ToArray();
        _network = Quantizer.Quantize(seed, new InMemoryBatches(_images, [1, 32, 32]), Batch, 0f, 1f);
        _network.SplitSingleSample = false;
        var trace = _network.Trace(_images, Batch);
        var layers = _network.Layers.ToList();
        int conv1 = layers.FindIndex(l => l.Name == "conv1"), conv2 = layers.FindIndex(l => l.Name == "conv2");
        int fc1 = layers.FindIndex(l => l.Name == "fc1"), fc2 = layers.FindIndex(l => l.Name == "fc2");
        _conv1 = (QuantizedConv2d)layers[conv1];
        _conv2 = (QuantizedConv2d)layers[conv2];
        _pool = ((QuantizedAvgPool2d)layers[conv2 + 1]).KernelSize;
        _fc1 = (QuantizedLinear)layers[fc1];
        _fc2 = (QuantizedLinear)layers[fc2];
        _inputCodes = trace[conv1].Codes;
        _conv1Shape = trace[conv1].SampleShape;
        _conv1Codes = trace[conv2].Codes;
        _conv2Shape = trace[conv2].SampleShape;
        _conv2Codes = trace[fc1].Codes;
        _fc1Codes = trace[fc2].Codes;
        _output = new byte[Batch * 64 * 32 * 32];
        _logits = new float[Batch * 10];
        _workspaces = [_workspace];
        var conv2Geometry = new ConvGeometry(32, 32, 32, 3, 3, 1, 1, 1, 1);
        _bordered = new byte[ConvPackQ8.ScratchLength(conv2Geometry)];
        ConvPackQ8.Border(_conv1Codes.AsSpan(0, conv2Geometry.InputSize), conv2Geometry, (byte)_conv2.Input.ZeroPoint, _bordered);
        _packed = new byte[GemmS8U8.PackedActivationsLength(conv2Geometry.ColumnRows, _pool * 32, GemmS8U8.Best)];
    }

    /// <summary>The whole network: quantize, every layer, logits.</summary>
    [Benchmark(Baseline = true)]
    public float[] Predict()
    {
        _network.Predict(_images, Batch, _logits, 1);
        return _logits;
    }

    /// <summary>The whole network with conv2 pooled a band of int32 accumulators at a time (before <see cref="PooledGemmQ8"/>).</summary>
    [Benchmark]
    public float[] PredictBandAccumulators()
    {
        _conv2.PoolsInTiles = false;
        _network.Predict(_images, Batch, _logits, 1);
        _conv2.PoolsInTiles = true;
        return _logits;
    }

    /// <summary>Float images to uint8 codes.</summary>
    [Benchmark]
    public byte[] QuantizeInput()
    {
        QuantizeF32.ToUInt8(_images, _network.Input, _output.AsSpan(0, _images.Length));
        return _output;
    }

    /// <summary>conv1 (1 -> 32, direct kernel, ReLU fused).</summary>
    [Benchmark]
    public byte[] Conv1()
    {
        _conv1.Forward(_inputCodes, _conv1Shape, Batch, _output, _workspace);
        return _output;
    }

    /// <summary>conv2 (32 -> 64, GEMM, ReLU fused) with the 4x4 average pooling fused.</summary>
    [Benchmark]
    public byte[] Conv2Pooled()
    {
        _conv2.ForwardPooled(_conv1Codes, _conv2Shape, Batch, _pool, _output, _workspaces, 0, 1);
        return _output;
    }

    /// <summary>conv2 with the pooling fused a band of int32 accumulators at a time (before <see cref="PooledGemmQ8"/>).</summary>
    [Benchmark]
    public byte[] Conv2PooledBandAccumulators()
    {
        _conv2.PoolsInTiles = false;
        _conv2.ForwardPooled(_conv1Codes, _conv2Shape, Batch, _pool, _output, _workspaces, 0, 1);
        _conv2.PoolsInTiles = true;
        return _output;
    }

    /// <summary>conv2's packing alone: the 8 bands of 4 rows of each of 64 bordered images, two panels per load (the default).</summary>
    [Benchmark]
    public byte[] Conv2Pack() => PackConv2(pairPanels: true);

    /// <summary>As <see cref="Conv2Pack"/>, panel by panel (before).</summary>
    [Benchmark]
    public byte[] Conv2PackPanelByPanel() => PackConv2(pairPanels: false);

    private byte[] PackConv2(bool pairPanels)
    {
        var g = new ConvGeometry(32, 32, 32, 3, 3, 1, 1, 1, 1);
        for (int s = 0; s < Batch; s++)
        {
            for (int row = 0; row < g.OutHeight; row += _pool)
            {
                ConvPackQ8.PackBorderedRows(_bordered, g, row, row + _pool, _packed, GemmS8U8.Best, pairPanels);
            }
        }
        return _packed;
    }

    /// <summary>fc1 (4096 -> 128, ReLU fused).</summary>
    [Benchmark]
    public byte[] Fc1()
    {
        _fc1.Forward(_conv2Codes, [_fc1.InFeatures], Batch, _output, _workspace);
        return _output;
    }

    /// <summary>fc2 (128 -> 10) to int32-accumulator logits.</summary>
    [Benchmark]
    public float[] Fc2()
    {
        _fc2.ForwardAccumulators(_fc1Codes, [_fc2.InFeatures], Batch, _logits, _workspace);
        return _logits;
    }
}
