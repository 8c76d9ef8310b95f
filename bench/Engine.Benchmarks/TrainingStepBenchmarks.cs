using BenchmarkDotNet.Attributes;
using Engine.Layers;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Benchmarks;

/// <summary>
/// The seed network's training step at batch 64 (forward, cross-entropy, backward, SGD with momentum 0.9 and weight
/// decay) on 1 and 2 threads: the backward paths this project replaced (the baseline: im2col + GEMM weight gradient
/// of the convolutions, ReLU and pooling backward as two passes) against the current ones, in the same run.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class TrainingStepBenchmarks
{
    private Sequential _network = null!;
    private FloatTensor _input = null!;
    private int[] _labels = null!;
    private CrossEntropyLoss _loss = null!;
    private Sgd _sgd = null!;

    /// <summary>Threads the kernels may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    private const int Batch = 64;

    [GlobalSetup]
    public void Setup()
    {
        _network = SeedNetwork.Create(seed: 1);
        _network.Threads = Threads;
        _input = BenchmarkInputs.Images(Batch);
        _labels = Enumerable.Range(0, Batch).Select(i => i % 10).ToArray();
        _loss = new CrossEntropyLoss();
        _sgd = new Sgd(_network.NamedParameters().Select(p => p.Parameter), 0.01f, 0.9f, weightDecay: 5e-4f);
        _parameters = [.. _network.NamedParameters().Select(p => p.Parameter)];
        _lastGood = [.. _parameters.Select(p => new float[p.Value.Length])];
    }

    /// <summary>The step with the earlier backward paths.</summary>
    [Benchmark(Baseline = true)]
    public float EarlierBackward()
    {
        SelectPaths(_network, earlier: true);
        return Step();
    }

    /// <summary>The step as the trainer runs it now.</summary>
    [Benchmark]
    public float CurrentBackward()
    {
        SelectPaths(_network, earlier: false);
        return Step();
    }

    /// <summary>
    /// The update as the trainer ran it before: every parameter (544,522 floats, 2.2 MB) copied aside for an undo, the
    /// SGD step, then every parameter checked for NaN and infinity.
    /// </summary>
    [Benchmark]
    public bool UpdateCopyStepCheck()
    {
        for (int i = 0; i < _parameters.Length; i++)
        {
            _parameters[i].Value.Data.CopyTo(_lastGood[i]);
        }
        _sgd.Step();
        bool finite = true;
        for (int i = 0; i < _parameters.Length; i++)
        {
            finite &= System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(_parameters[i].Value.Data);
        }
        return finite;
    }

    /// <summary>The update as the trainer runs it now: the copy and the check inside the SGD pass.</summary>
    [Benchmark]
    public bool UpdateInOnePass() => _sgd.Step(_lastGood);

    /// <summary>The SGD update alone (momentum 0.9, weight decay), every parameter.</summary>
    [Benchmark]
    public void SgdStep() => _sgd.Step();

    private Parameter[] _parameters = null!;
    private float[][] _lastGood = null!;

    private float Step()
    {
        _network.ZeroGradients();
        float value = _loss.Forward(_network.Forward(_input), _labels);
        _network.Backward(_loss.Backward());
        _sgd.Step();
        return value;
    }

    /// <summary>Switches every layer of <paramref name="network"/> to the earlier backward paths, or back.</summary>
    internal static void SelectPaths(Sequential network, bool earlier)
    {
        network.FuseBackward = !earlier;
        foreach ((_, Layer layer) in network.Layers)
        {
            if (layer is Conv2d conv)
            {
                conv.UseIm2ColWeightGradient = earlier;
            }
        }
    }
}

/// <summary>
/// conv2 of the seed network alone (32 -> 64, 3x3, pad 1, 32x32), batch 64, one thread: the weight gradient alone
/// (dW = sum over n of dy[n] col[n]^T, 2 x 64 x 288 x 1024 x 64 = 2.42 GFLOP) and the whole backward pass (dW and dx,
/// 4.83 GFLOP), through im2col + GEMM (the baseline) and through the implicit weight-gradient kernel.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class Conv2BackwardBenchmarks
{
    private Conv2d _conv = null!;
    private FloatTensor _input = null!, _outputGradient = null!;

    [GlobalSetup]
    public void Setup()
    {
        _conv = new Conv2d(32, 64, 3, 1, 1) { Threads = 1 };
        _conv.Initialize(new SeededRandom(1));
        _input = new FloatTensor(64, 32, 32, 32);
        var random = new SeededRandom(2);
        for (int i = 0; i < _input.Length; i++)
        {
            _input.Data[i] = MathF.Max(0f, random.NextUniform(-1f, 1f));
        }
        FloatTensor output = _conv.Forward(_input);
        _outputGradient = new FloatTensor(output.Shape.ToArray());
        for (int i = 0; i < _outputGradient.Length; i++)
        {
            _outputGradient.Data[i] = random.NextUniform(-1f, 1f);
        }
    }

    /// <summary>dW and db through im2col and the general GEMM.</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor? WeightGradientIm2Col() => Backward(im2col: true, inputGradient: false);

    /// <summary>dW and db through the implicit kernel.</summary>
    [Benchmark]
    public FloatTensor? WeightGradientImplicit() => Backward(im2col: false, inputGradient: false);

    /// <summary>dW, db and dx, the weight gradient through im2col.</summary>
    [Benchmark]
    public FloatTensor? BackwardIm2Col() => Backward(im2col: true, inputGradient: true);

    /// <summary>dW, db and dx, the weight gradient through the implicit kernel.</summary>
    [Benchmark]
    public FloatTensor? BackwardImplicit() => Backward(im2col: false, inputGradient: true);

    private FloatTensor? Backward(bool im2col, bool inputGradient)
    {
        _conv.UseIm2ColWeightGradient = im2col;
        _conv.ComputeInputGradient = inputGradient;
        return _conv.Backward(_outputGradient);
    }
}
