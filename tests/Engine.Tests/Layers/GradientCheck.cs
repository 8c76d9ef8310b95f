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

    public static void Layer(Layer layer, Tensor input, ulong seed, int maxCoordinates = 400)
    {
        Tensor output = layer.Forward(input);
        float[] r = TestData.Uniform(output.Length, seed);
        var upstream = new Tensor(r, output.Shape.ToArray());
        foreach (Parameter p in layer.Parameters)
        {
            p.ZeroGradient();
        }
        layer.ComputeInputGradient = true;
        float[] inputGradient = layer.Backward(upstream)!.Data.ToArray();
        float[][] parameterGradients = layer.Parameters.Select(p => p.Gradient.Data.ToArray()).ToArray();

        double Loss()
        {
            Tensor y = layer.Forward(input);
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
}
