using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Statistics;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Benchmarks;

/// <summary>
/// What tracking gradient statistics costs: one training step (batch 64) with and without the Welford tracker
/// observing every gradient (545,098 parameters plus per-neuron Taylor terms), and the tracker's update alone, over all
/// steps (Welford) and exponentially weighted (half-life 100 steps: one multiply more per element).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GradientStatisticsBenchmarks
{
    private Sequential _network = null!;
    private FloatTensor _input = null!;
    private int[] _labels = null!;
    private CrossEntropyLoss _loss = null!;
    private Sgd _sgd = null!;
    private GradientStatistics _statistics = null!;
    private GradientStatistics _windowed = null!;

    /// <summary>Threads the kernels may use.</summary>
    [Params(2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _network = SeedNetwork.Create(seed: 1);
        _network.Threads = Threads;
        _input = BenchmarkInputs.Images(64);
        _labels = Enumerable.Range(0, 64).Select(i => i % 10).ToArray();
        _loss = new CrossEntropyLoss();
        _sgd = new Sgd(_network.NamedParameters().Select(p => p.Parameter), 0.01f, 0.9f);
        _statistics = new GradientStatistics(_network, [1, 32, 32]);
        _windowed = new GradientStatistics(_network, [1, 32, 32], StatisticsWindow.ExponentialHalfLife(100));
    }

    /// <summary>Forward, loss, backward, SGD step.</summary>
    [Benchmark(Baseline = true)]
    public float TrainingStep() => Step(observe: false);

    /// <summary>The same step with every gradient fed to the Welford tracker before the update.</summary>
    [Benchmark]
    public float TrainingStepWithStatistics() => Step(observe: true);

    /// <summary>The tracker's update alone.</summary>
    [Benchmark]
    public void ObserveGradients() => _statistics.OnGradients(_network);

    /// <summary>The exponentially weighted tracker's update alone.</summary>
    [Benchmark]
    public void ObserveGradientsWindowed() => _windowed.OnGradients(_network);

    private float Step(bool observe)
    {
        _network.ZeroGradients();
        float value = _loss.Forward(_network.Forward(_input), _labels);
        _network.Backward(_loss.Backward());
        if (observe)
        {
            _statistics.OnGradients(_network);
        }
        _sgd.Step();
        return value;
    }
}
