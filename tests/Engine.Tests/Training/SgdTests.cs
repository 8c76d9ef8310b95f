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
