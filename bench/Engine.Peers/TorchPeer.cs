using Engine.Layers;
using Engine.Tensors;
using Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Engine.Peers;

/// <summary>
/// The seed network in libtorch (through TorchSharp), with our weights: conv1 -> ReLU -> conv2 -> ReLU -> avg-pool 4 ->
/// flatten -> fc1 -> ReLU -> fc2, the module names and tensor layouts of our model files (PyTorch's state_dict), widths
/// read from our parameters so a structurally pruned network maps too. libtorch loads on Debian 12 only because the
/// build patches libLibTorchSharp.so (Engine.Peers.csproj, bench/README.md "libtorch").
/// </summary>
internal sealed class TorchPeer : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;

    private readonly Sequential _ours;

    public TorchPeer(Sequential ours)
    {
        _ours = ours;
        _model = Build(ours);
        _model.eval();
    }

    /// <summary>libtorch's version, as TorchSharp reports it.</summary>
    public static string Version => __version__;

    /// <summary>Logits of <paramref name="samples"/> inputs [N, 1, 32, 32], under inference mode.</summary>
    public float[] Logits(float[] inputs, int samples)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        Tensor x = tensor(inputs, [samples, 1, 32, 32]);
        return _model.forward(x).data<float>().ToArray();
    }

    /// <summary>
    /// A closure that runs one inference call on <paramref name="inputs"/> (made into a tensor once, here), under
    /// inference mode, freeing its result: what the timing loop calls.
    /// </summary>
    public Action Inference(float[] inputs, int samples)
    {
        Tensor x = tensor(inputs, [samples, 1, 32, 32]);
        return () =>
        {
            // The scope frees every intermediate tensor of the call at once, as a TorchSharp program should: left to the
            // garbage collector, each call's activations would pile up as unreleased native memory.
            using var scope = NewDisposeScope();
            using var mode = inference_mode();
            _model.forward(x);
        };
    }

    /// <summary>
    /// A closure that runs one training step on a copy of this network (this one stays as it is): forward,
    /// cross-entropy with <paramref name="options"/>' label smoothing, backward, and torch.optim.SGD with its learning
    /// rate, momentum, Nesterov flag and weight decay (our <see cref="Sgd"/> is PyTorch's update, step for step).
    /// </summary>
    public Action TrainingStep(float[] inputs, int[] labels, TrainingOptions options)
    {
        nn.Module<Tensor, Tensor> trained = Build(_ours);
        trained.train();
        Tensor x = tensor(inputs, [labels.Length, 1, 32, 32]);
        Tensor y = tensor(labels.Select(l => (long)l).ToArray(), [labels.Length]);
        var sgd = optim.SGD(trained.parameters(), options.LearningRate, options.Momentum, weight_decay: options.WeightDecay,
            nesterov: options.Nesterov && options.Momentum > 0f);
        return () =>
        {
            using var scope = NewDisposeScope();
            sgd.zero_grad();
            Tensor loss = nn.functional.cross_entropy(trained.forward(x), y, label_smoothing: options.LabelSmoothing);
            loss.backward();
            sgd.step();
        };
    }

    /// <summary>
    /// The median time of each layer alone on the activations it sees (under inference mode), <paramref name="repeats"/>
    /// calls each: where libtorch's time goes (Program.cs prints it with --torch-layers).
    /// </summary>
    public IEnumerable<(string Layer, double Milliseconds)> LayerTimes(float[] inputs, int samples, int repeats)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        Tensor x = tensor(inputs, [samples, 1, 32, 32]);
        var result = new List<(string, double)>();
        foreach ((string name, nn.Module module) in _model.named_children())
        {
            var layer = (nn.Module<Tensor, Tensor>)module;
            var times = new List<double>();
            Tensor y = x;
            for (int r = 0; r < repeats; r++)
            {
                using var inner = NewDisposeScope();
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                y = layer.forward(x);
                times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                y = y.MoveToOuterDisposeScope();
            }
            times.Sort();
            result.Add((name, times[times.Count / 2]));
            x = y;
        }
        return result;
    }

    public void Dispose() => _model.Dispose();

    // A fresh module with a copy of our weights.
    private static nn.Module<Tensor, Tensor> Build(Sequential ours)
    {
        Dictionary<string, Parameter> parameters = ours.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        int conv1 = parameters["conv1.weight"].Value.Dim(0), conv2 = parameters["conv2.weight"].Value.Dim(0);
        int hidden = parameters["fc1.weight"].Value.Dim(0), flat = parameters["fc1.weight"].Value.Dim(1), classes = parameters["fc2.weight"].Value.Dim(0);
        var model = nn.Sequential(
            ("conv1", nn.Conv2d(1, conv1, 3, padding: 1)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(conv1, conv2, 3, padding: 1)),
            ("relu2", nn.ReLU()),
            ("pool", nn.AvgPool2d(4)),
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(flat, hidden)),
            ("relu3", nn.ReLU()),
            ("fc2", nn.Linear(hidden, classes)));
        using (no_grad())
        {
            foreach ((string name, TorchSharp.Modules.Parameter p) in model.named_parameters())
            {
                FloatTensor value = parameters[name].Value;
                using Tensor source = tensor(value.Data.ToArray(), [.. value.Shape.ToArray().Select(d => (long)d)]);
                p.copy_(source);
            }
        }
        return model;
    }
}
