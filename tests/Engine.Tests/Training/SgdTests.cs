using Engine.Layers;
using Engine.Training;

namespace Engine.Tests.Training;

public class SgdTests
{
    [Theory]
    [InlineData(0f, 0f, 0f, false)]
    [InlineData(0.9f, 0f, 0f, false)]
    [InlineData(0.9f, 1e-2f, 0f, false)]
    [InlineData(0.9f, 1e-2f, 0.1f, false)]
    [InlineData(0.9f, 5e-4f, 0f, true)]
    public void Three_steps_follow_the_pytorch_update_rule(float momentum, float decay, float dampening, bool nesterov)
    {
        var p = new Parameter("w", 3);
        float[] w = [1f, -2f, 0.5f];
        w.CopyTo(p.Value.Data);
        const float lr = 0.1f;
        var sgd = new Sgd([p], lr, momentum, decay, dampening, nesterov);
        double[] ew = w.Select(v => (double)v).ToArray(), buffer = new double[3];
        for (int step = 0; step < 3; step++)
        {
            float[] g = [0.3f * (step + 1), -0.1f, 2f - step];
            g.CopyTo(p.Gradient.Data);
            sgd.Step();
            for (int i = 0; i < 3; i++)
            {
                double gi = g[i] + decay * ew[i];
                if (momentum != 0)
                {
                    buffer[i] = step == 0 ? gi : momentum * buffer[i] + (1 - dampening) * gi;
                    gi = nesterov ? gi + momentum * buffer[i] : buffer[i];
                }
                ew[i] -= lr * gi;
                Assert.Equal(ew[i], p.Value.Data[i], 1e-5);
            }
        }
    }

    [Fact]
    public void Invalid_hyperparameters_are_rejected_by_name()
    {
        var p = new Parameter("w", 1);
        Assert.Contains("learning rate", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], -1f)).Message);
        Assert.Contains("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], 0.1f, 1.5f)).Message);
        Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, 0f, nesterov: true));
    }
}

public class SgdVectorisedUpdateTests
{
    // PyTorch's torch.optim.SGD step for one element, in float, written as its documentation states it; additions of a
    // scaled tensor (add with alpha) as fused multiply-adds.
    private static void Reference(float[] w, float[] grad, float[] buffer, float lr, float momentum, float decay, float dampening,
        bool nesterov, bool first)
    {
        for (int i = 0; i < w.Length; i++)
        {
            float g = MathF.FusedMultiplyAdd(decay, w[i], grad[i]);
            if (momentum != 0f)
            {
                buffer[i] = first ? g : MathF.FusedMultiplyAdd(1f - dampening, g, momentum * buffer[i]);
                g = nesterov ? MathF.FusedMultiplyAdd(momentum, buffer[i], g) : buffer[i];
            }
            w[i] = MathF.FusedMultiplyAdd(-lr, g, w[i]);
        }
    }

    [Theory]
    [InlineData(0f, 0f, 0f, false)]
    [InlineData(0.9f, 0f, 0f, false)]
    [InlineData(0.9f, 5e-4f, 0f, false)]
    [InlineData(0.8f, 1e-2f, 0.25f, false)]
    [InlineData(0.9f, 5e-4f, 0f, true)]
    public void Every_element_of_odd_length_parameters_follows_the_scalar_pytorch_formula_exactly(float momentum, float decay,
        float dampening, bool nesterov)
    {
        // Lengths around the vector width: the vector body, the scalar tail, both, and a one-element parameter.
        int[] lengths = [1, 7, 8, 9, 33, 1027];
        Parameter[] parameters = lengths.Select((n, k) => new Parameter($"p{k}", n)).ToArray();
        float[][] w = lengths.Select((n, k) => TestData.Uniform(n, (ulong)(10 + k), -3f, 3f)).ToArray();
        float[][] buffers = lengths.Select(n => new float[n]).ToArray();
        for (int k = 0; k < parameters.Length; k++)
        {
            w[k].CopyTo(parameters[k].Value.Data);
        }
        const float lr = 0.05f;
        var sgd = new Sgd(parameters, lr, momentum, decay, dampening, nesterov);
        for (int step = 0; step < 4; step++)
        {
            for (int k = 0; k < parameters.Length; k++)
            {
                float[] grad = TestData.Uniform(lengths[k], (ulong)(100 * step + k));
                grad.CopyTo(parameters[k].Gradient.Data);
                Reference(w[k], grad, buffers[k], lr, momentum, decay, dampening, nesterov, first: step == 0);
            }
            sgd.Step();
            for (int k = 0; k < parameters.Length; k++)
            {
                Assert.Equal(w[k], parameters[k].Value.Data.ToArray());
            }
        }
    }

    [Theory]
    [InlineData(3, -1)]
    [InlineData(37, -1)]
    [InlineData(37, 5)]     // the overflow in the vector body
    [InlineData(37, 34)]    // in the scalar tail
    public void The_step_keeps_the_previous_values_and_reports_a_non_finite_update(int length, int overflowAt)
    {
        var p = new Parameter("w", length);
        float[] before = TestData.Uniform(length, 3);
        before.CopyTo(p.Value.Data);
        TestData.Uniform(length, 4).CopyTo(p.Gradient.Data);
        if (overflowAt >= 0)
        {
            p.Value.Data[overflowAt] = before[overflowAt] = float.MaxValue;
            p.Gradient.Data[overflowAt] = -float.MaxValue;   // w - lr g = MaxValue + 0.5 MaxValue: +infinity
        }
        var sgd = new Sgd([p], 0.5f, 0.9f);
        float[][] previous = [new float[length]];
        bool finite = sgd.Step(previous);
        Assert.Equal(overflowAt < 0, finite);
        Assert.Equal(before, previous[0]);
        Assert.Equal(overflowAt < 0, p.Value.Data.ToArray().All(float.IsFinite));
    }

    [Fact]
    public void The_step_reads_the_gradient_without_changing_it()
    {
        var p = new Parameter("w", 19);
        TestData.Uniform(19, 1).CopyTo(p.Value.Data);
        float[] grad = TestData.Uniform(19, 2);
        grad.CopyTo(p.Gradient.Data);
        new Sgd([p], 0.1f, 0.9f, 1e-2f, nesterov: true).Step();
        Assert.Equal(grad, p.Gradient.Data.ToArray());
    }
}
