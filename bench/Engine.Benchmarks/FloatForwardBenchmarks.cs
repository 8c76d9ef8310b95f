using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Benchmarks;

/// <summary>
/// The seed network's float forward pass (inference) and one SGD training step, at batch 1 and 64, on 1 and 2 threads.
/// Multiply-accumulates per sample: conv1 0.29 M, conv2 18.9 M, fc1 0.52 M, fc2 1.3 k (19.7 M in all).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class FloatForwardBenchmarks
{
    private Sequential _network = null!;
    private FloatTensor _input = null!;
    private int[] _labels = null!;
    private CrossEntropyLoss _loss = null!;
    private Sgd _sgd = null!;

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
        _labels = Enumerable.Range(0, Batch).Select(i => i % 10).ToArray();
        _loss = new CrossEntropyLoss();
        _sgd = new Sgd(_network.NamedParameters().Select(p => p.Parameter), 0.01f, 0.9f);
    }

    /// <summary>Logits for the batch.</summary>
    [Benchmark]
    public FloatTensor Forward() => _network.Forward(_input);

    /// <summary>Forward, loss, backward and an SGD update.</summary>
    [Benchmark]
    public float TrainingStep()
    {
        _network.ZeroGradients();
        float value = _loss.Forward(_network.Forward(_input), _labels);
        _network.Backward(_loss.Backward());
        _sgd.Step();
        return value;
    }
}
