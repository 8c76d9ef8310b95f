using Engine.Layers;
using Engine.Tensors;

namespace Engine.Tests.Layers;

/// <summary>
/// Central finite differences, (L(x + h e_i) - L(x - h e_i)) / 2h, against a hand-written backward pass, with the
/// scalar loss L = sum of r * f(x) for a fixed random r (so dL/df = r) accumulated in double.
/// </summary>
internal static class GradientCheck
{
    public const float Step = 1e-2f;

    public static void Layer(Layer layer, FloatTensor input, ulong seed, int maxCoordinates = 400)
    {
        FloatTensor output = layer.Forward(input);
        float[] r = TestData.Uniform(output.Length, seed);
        var upstream = new FloatTensor(r, output.Shape.ToArray());
        foreach (Parameter p in layer.Parameters)
        {
            p.ZeroGradient();
        }
        layer.ComputeInputGradient = true;
        float[] inputGradient = layer.Backward(upstream)!.Data.ToArray();
        float[][] parameterGradients = layer.Parameters.Select(p => p.Gradient.Data.ToArray()).ToArray();

        double Loss()
        {
            FloatTensor y = layer.Forward(input);
            double sum = 0;
            for (int i = 0; i < r.Length; i++)
            {
                sum += (double)r[i] * y.Data[i];
            }
            return sum;
        }

        Compare("input", input.Data.ToArray().Length, i => input.Data[i], (i, v) => input.Data[i] = v, inputGradient, Loss, maxCoordinates);
        for (int k = 0; k < layer.Parameters.Count; k++)
        {
            Parameter p = layer.Parameters[k];
            Compare(p.Name, p.Value.Length, i => p.Value.Data[i], (i, v) => p.Value.Data[i] = v, parameterGradients[k], Loss, maxCoordinates);
        }
    }

    public static void Compare(string what, int length, Func<int, float> get, Action<int, float> set, float[] analytic,
        Func<double> loss, int maxCoordinates, float step = Step, double absoluteTolerance = 2e-3, double relativeTolerance = 1e-2)
    {
        int stride = Math.Max(1, length / maxCoordinates);
        for (int i = 0; i < length; i += stride)
        {
            float original = get(i);
            set(i, original + step);
            double plus = loss();
            set(i, original - step);
            double minus = loss();
            set(i, original);
            double numeric = (plus - minus) / (2 * step);
            double error = Math.Abs(numeric - analytic[i]);
            Assert.True(error <= absoluteTolerance + relativeTolerance * Math.Max(Math.Abs(numeric), Math.Abs(analytic[i])),
                $"{what}[{i}]: finite difference {numeric}, backward {analytic[i]}");
        }
    }

    /// <summary>
    /// Whole-network check along random directions v of all parameters at once:
    /// (L(θ + h v) - L(θ - h v)) / 2h = &lt;∇L, v&gt;. Summing over every parameter averages out rounding noise and the rare
    /// ReLU kink a single coordinate's step can cross.
    /// </summary>
    public static void Directional(Sequential network, FloatTensor x, int[] labels, int directions = 3, float step = 1e-3f)
    {
        var loss = new Engine.Training.CrossEntropyLoss();
        double Loss() => loss.Forward(network.Forward(x), labels);
        network.ZeroGradients();
        loss.Forward(network.Forward(x), labels);
        network.Backward(loss.Backward());
        var parameters = network.NamedParameters().Select(p => p.Parameter).ToList();
        var gradients = parameters.Select(p => p.Gradient.Data.ToArray()).ToList();
        for (ulong d = 0; d < (ulong)directions; d++)
        {
            var v = parameters.Select((p, i) => TestData.Uniform(p.Value.Length, 100 + d * 10 + (ulong)i)).ToList();
            double expected = 0;
            for (int i = 0; i < v.Count; i++)
            {
                for (int j = 0; j < v[i].Length; j++)
                {
                    expected += (double)v[i][j] * gradients[i][j];
                }
            }
            void Move(float scale)
            {
                for (int i = 0; i < v.Count; i++)
                {
                    Span<float> w = parameters[i].Value.Data;
                    for (int j = 0; j < w.Length; j++)
                    {
                        w[j] += scale * v[i][j];
                    }
                }
            }
            Move(step);
            double plus = Loss();
            Move(-2 * step);
            double minus = Loss();
            Move(step);
            double numeric = (plus - minus) / (2 * step);
            Assert.True(Math.Abs(numeric - expected) <= 1e-2 * Math.Abs(expected) + 1e-3,
                $"direction {d}: finite difference {numeric}, backward {expected}");
        }
    }
}
