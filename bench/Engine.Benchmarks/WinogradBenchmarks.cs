using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// conv2 of the seed network (32 -> 64 channels, 3 x 3, padding 1, 32 x 32 images) by the direct convolution (implicit
/// GEMM) and by Winograd F(4 x 4, 3 x 3), in the same run: the training forward pass and inference (one thread; and
/// inference at batch 1 on two layer threads), and the input gradient dx = conv(dy, rot180(W)^T) per sample as the
/// backward pass computes it (direct: W^T dy then col2im; Winograd: the flipped, transposed filters). Direct-equivalent
/// work: 2 x 64 x 32 x 9 x 1024 = 37.7 MFLOP per sample for each of the three.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class WinogradBenchmarks
{
    private Conv2d _direct = null!, _winograd = null!;
    private FloatTensor _input = null!;
    private float[] _dy = null!, _dx = null!, _columns = null!, _backFilters = null!, _padded = null!, _chunks = null!, _output = null!;
    private readonly InferenceWorkspace _workspace = new(), _twoThreads = new() { LayerThreads = 2 };
    private ConvGeometry _g;
    private float[] _forwardFilters = null!, _filterScratch = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _direct = new Conv2d(32, 64, 3, 1, 1) { Threads = 1, Algorithm = ConvAlgorithm.Direct };
        _direct.Initialize(new SeededRandom(3));
        _winograd = new Conv2d(32, 64, 3, 1, 1) { Threads = 1, Algorithm = ConvAlgorithm.Winograd };
        _direct.Weight.Value.Data.CopyTo(_winograd.Weight.Value.Data);
        _direct.Bias.Value.Data.CopyTo(_winograd.Bias.Value.Data);
        _direct.PrepareInference();
        _winograd.PrepareInference();
        _input = new FloatTensor(Batch, 32, 32, 32);
        var random = new SeededRandom(4);
        for (int i = 0; i < _input.Length; i++)
        {
            _input.Data[i] = random.NextUniform(0f, 1f);
        }
        _g = new ConvGeometry(32, 32, 32, 3, 3, 1, 1, 1, 1);
        _dy = new float[Batch * 64 * 1024];
        for (int i = 0; i < _dy.Length; i++)
        {
            _dy[i] = random.NextUniform(-1f, 1f);
        }
        _dx = new float[Batch * _g.InputSize];
        _output = new float[Batch * 64 * 1024];
        _columns = new float[_g.ColumnRows * _g.ColumnCols];
        _forwardFilters = new float[WinogradF32.TransformedFiltersLength(64, 32)];
        _filterScratch = new float[WinogradF32.FilterScratchLength(64, 32)];
        _backFilters = new float[WinogradF32.TransformedFiltersLength(32, 64)];
        WinogradF32.TransformFilters(_direct.Weight.Value.Data, 64, 32, flipTranspose: true, _backFilters, new float[WinogradF32.FilterScratchLength(32, 64)]);
        var back = new ConvGeometry(64, 32, 32, 3, 3, 1, 1, 1, 1);
        _padded = new float[WinogradF32.PaddedLength(back)];
        _chunks = new float[WinogradF32.ChunkScratchLength(64, 32)];
    }

    /// <summary>Training forward pass, direct (implicit GEMM).</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor ForwardDirect() => _direct.Forward(_input);

    /// <summary>Training forward pass, Winograd (includes the filter transform, once per pass).</summary>
    [Benchmark]
    public FloatTensor ForwardWinograd() => _winograd.Forward(_input);

    /// <summary>Inference, direct, one thread.</summary>
    [Benchmark]
    public void InferDirect() => _direct.Infer(_input.Data, [32, 32, 32], Batch, _output, _workspace);

    /// <summary>Inference, direct, each image's output panels split over two layer threads.</summary>
    [Benchmark]
    public void InferDirectTwoLayerThreads() => _direct.Infer(_input.Data, [32, 32, 32], Batch, _output, _twoThreads);

    /// <summary>Inference, Winograd, one thread.</summary>
    [Benchmark]
    public void InferWinograd() => _winograd.Infer(_input.Data, [32, 32, 32], Batch, _output, _workspace);

    /// <summary>Inference, Winograd, each image's tile chunks split over two layer threads.</summary>
    [Benchmark]
    public void InferWinogradTwoLayerThreads() => _winograd.Infer(_input.Data, [32, 32, 32], Batch, _output, _twoThreads);

    /// <summary>The filter transform U = G g G^T of conv2's weights, packed: once per training forward pass.</summary>
    [Benchmark]
    public void TransformFilters() => WinogradF32.TransformFilters(_direct.Weight.Value.Data, 64, 32, flipTranspose: false, _forwardFilters, _filterScratch);

    /// <summary>Input gradient as the direct backward pass computes it: dcol = W^T dy, then col2im.</summary>
    [Benchmark]
    public void BackwardDataDirect()
    {
        int pixels = _g.ColumnCols, k = _g.ColumnRows;
        for (int n = 0; n < Batch; n++)
        {
            GemmF32.Multiply(true, false, k, pixels, 64, _direct.Weight.Value.Data, k, _dy.AsSpan(n * 64 * pixels, 64 * pixels), pixels,
                _columns, pixels, accumulate: false, GemmF32.Best);
            Span<float> dx = _dx.AsSpan(n * _g.InputSize, _g.InputSize);
            dx.Clear();
            Im2ColF32.Col2Im(_columns, _g, dx);
        }
    }

    /// <summary>Input gradient by Winograd with the flipped, transposed filters (transformed once per backward pass).</summary>
    [Benchmark]
    public void BackwardDataWinograd()
    {
        var back = new ConvGeometry(64, 32, 32, 3, 3, 1, 1, 1, 1);
        for (int n = 0; n < Batch; n++)
        {
            WinogradF32.Forward(_dy.AsSpan(n * 64 * 1024, 64 * 1024), back, _backFilters, 32, [], relu: false,
                _dx.AsSpan(n * _g.InputSize, _g.InputSize), _padded, _chunks, WinogradF32.Best);
        }
    }
}
