using BenchmarkDotNet.Attributes;
using Engine.Layers;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Where Winograd stops paying: inference of one 32 x 32 image (one thread) through a 3 x 3, padding-1 convolution
/// with few channels, direct against Winograd in the same run. The rule <c>Conv2d.PrefersWinograd</c> (at least 8
/// input channels and 128 channel pairs) comes from these figures.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class WinogradChannelsBenchmarks
{
    private Conv2d _direct = null!, _winograd = null!;
    private float[] _input = null!, _output = null!;
    private readonly InferenceWorkspace _workspace = new();

    /// <summary>Input x output channels; 1x32 is conv1.</summary>
    [Params("1x32", "4x8", "8x8", "8x16", "16x16")]
    public string Channels { get; set; } = "1x32";

    private int _cin;

    [GlobalSetup]
    public void Setup()
    {
        string[] parts = Channels.Split('x');
        _cin = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        int cout = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        _direct = new Conv2d(_cin, cout, 3, 1, 1) { Algorithm = ConvAlgorithm.Direct };
        _direct.Initialize(new SeededRandom(3));
        _winograd = new Conv2d(_cin, cout, 3, 1, 1) { Algorithm = ConvAlgorithm.Winograd };
        _direct.Weight.Value.Data.CopyTo(_winograd.Weight.Value.Data);
        _direct.PrepareInference();
        _winograd.PrepareInference();
        _input = new float[_cin * 1024];
        var random = new SeededRandom(4);
        for (int i = 0; i < _input.Length; i++)
        {
            _input[i] = random.NextUniform(0f, 1f);
        }
        _output = new float[cout * 1024];
    }

    /// <summary>Direct (implicit GEMM).</summary>
    [Benchmark(Baseline = true)]
    public void InferDirect() => _direct.Infer(_input, [_cin, 32, 32], 1, _output, _workspace);

    /// <summary>Winograd F(4 x 4, 3 x 3).</summary>
    [Benchmark]
    public void InferWinograd() => _winograd.Infer(_input, [_cin, 32, 32], 1, _output, _workspace);
}
