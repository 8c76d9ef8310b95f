using BenchmarkDotNet.Attributes;
using Engine.Kernels;

namespace Engine.Benchmarks;

/// <summary>
/// The raw convolution of one 32 x 32 image into 32 channels (3 x 3, padding 1) by the direct kernel against the implicit
/// GEMM, for filters of increasing depth (input channels x 9): where the direct kernel stops paying is the rule
/// DirectConvF32.MaxDepth. Depth 9 is the seed's conv1. Padding the image is included in both.
/// </summary>
[MedianColumn]
public class DirectConvBenchmarks
{
    private ConvGeometry _g;
    private float[] _image = null!, _weights = null!, _packed = null!, _padded = null!, _output = null!;
    private int[] _offsets = null!;
    private const int OutChannels = 32;

    /// <summary>Input channels: depth 9, 18, 27, 36, 72.</summary>
    [Params(1, 2, 3, 4, 8)]
    public int InChannels { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _g = new ConvGeometry(InChannels, 32, 32, 3, 3, 1, 1, 1, 1);
        _image = new float[_g.InputSize];
        _weights = new float[OutChannels * _g.ColumnRows];
        var random = new SeededRandom(3);
        for (int i = 0; i < _image.Length; i++)
        {
            _image[i] = random.NextUniform(0f, 1f);
        }
        for (int i = 0; i < _weights.Length; i++)
        {
            _weights[i] = random.NextUniform(-1f, 1f);
        }
        _packed = new float[GemmF32.PackedRowsLength(OutChannels, _g.ColumnRows)];
        GemmF32.PackRows(_weights, _g.ColumnRows, OutChannels, _g.ColumnRows, _packed);
        _padded = new float[ImplicitConvF32.PaddedLength(_g)];
        _offsets = new int[_g.ColumnRows];
        _output = new float[OutChannels * _g.ColumnCols];
    }

    /// <summary>The implicit GEMM (6 x 32 micro-kernel tiles).</summary>
    [Benchmark(Baseline = true)]
    public float[] ImplicitGemm()
    {
        ImplicitConvF32.Forward(_image, _g, _packed, OutChannels, _output, _padded, _offsets);
        return _output;
    }

    /// <summary>The direct kernel (4 channels x 2 vectors per block).</summary>
    [Benchmark]
    public float[] Direct()
    {
        DirectConvF32.Pad(_image, _g, _padded);
        DirectConvF32.Compute(_g, _weights, OutChannels, _padded, 0, _g.OutHeight, _output, _g.ColumnCols, DirectConvF32.Best);
        return _output;
    }
}
