using Engine.Layers;
using Engine.Tensors;
using Engine.Training;

namespace Engine.Tests.Layers;

public class HandComputedTests
{
    // x[i, j] = 4 i + j + 1 on a 4x4 grid.
    private static FloatTensor Grid4x4() => new(Enumerable.Range(1, 16).Select(v => (float)v).ToArray(), 1, 1, 4, 4);

    [Fact]
    public void Conv_3x3_with_padding_1_on_a_4x4_input_sums_each_zero_padded_neighbourhood()
    {
        var conv = new Conv2d(1, 1, 3, stride: 1, padding: 1);
        conv.Weight.Value.Data.Fill(1f);
        conv.Bias.Value.Data[0] = 0.5f;
        FloatTensor y = conv.Forward(Grid4x4());
        float[] expected =
        [
            14, 24, 30, 22,
            33, 54, 63, 45,
            57, 90, 99, 69,
            46, 72, 78, 54,
        ];
        Assert.Equal(expected.Select(v => v + 0.5f).ToArray(), y.Data.ToArray());
    }

    [Fact]
    public void Conv_is_cross_correlation_not_flipped_convolution()
    {
        // Only the top-left tap is 1, so y[i, j] = x[i - 1, j - 1] (PyTorch semantics); a flipped kernel would give x[i + 1, j + 1].
        var conv = new Conv2d(1, 1, 3, stride: 1, padding: 1);
        conv.Weight.Value.Data[0] = 1f;
        FloatTensor y = conv.Forward(Grid4x4());
        float[] expected =
        [
            0, 0, 0, 0,
            0, 1, 2, 3,
            0, 5, 6, 7,
            0, 9, 10, 11,
        ];
        Assert.Equal(expected, y.Data.ToArray());
    }

    [Fact]
    public void Avg_pool_2x2_averages_each_window()
    {
        FloatTensor y = new AvgPool2d(2).Forward(Grid4x4());
        Assert.Equal([1, 1, 2, 2], y.Shape.ToArray());
        Assert.Equal([3.5f, 5.5f, 11.5f, 13.5f], y.Data.ToArray());
    }

    [Fact]
    public void Cross_entropy_of_equal_logits_is_log_of_the_class_count()
    {
        var loss = new CrossEntropyLoss();
        float value = loss.Forward(new FloatTensor(1, 3), [0]);
        Assert.Equal(MathF.Log(3f), value, 1e-6f);
        FloatTensor g = loss.Backward();
        Assert.Equal(1f / 3 - 1, g.Data[0], 1e-6f);
        Assert.Equal(1f / 3, g.Data[1], 1e-6f);
    }

    [Fact]
    public void Cross_entropy_known_case_with_large_logits()
    {
        // logits (1000, 1001, 1002), label 2: loss = log(1 + e^-1 + e^-2) = 0.40760596.
        var loss = new CrossEntropyLoss();
        float value = loss.Forward(new FloatTensor([1000f, 1001f, 1002f], 1, 3), [2]);
        Assert.Equal(0.40760596f, value, 1e-5f);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Cross_entropy_gradient_matches_finite_differences(float smoothing)
    {
        var loss = new CrossEntropyLoss(smoothing);
        FloatTensor logits = TestData.FloatTensor(1, 4, 7);
        int[] labels = [0, 6, 3, 3];
        loss.Forward(logits, labels);
        float[] analytic = loss.Backward().Data.ToArray();
        GradientCheck.Compare("logits", logits.Length, i => logits.Data[i], (i, v) => logits.Data[i] = v, analytic,
            () => loss.Forward(logits, labels), maxCoordinates: 100, step: 1e-2f, absoluteTolerance: 2e-4);
    }

    [Fact]
    public void Cross_entropy_with_smoothing_matches_the_definition()
    {
        // PyTorch: loss = (1 - eps) * nll + eps * mean over classes of -log p.
        FloatTensor logits = TestData.FloatTensor(5, 2, 4);
        int[] labels = [1, 3];
        float eps = 0.2f;
        float smoothed = new CrossEntropyLoss(eps).Forward(logits, labels);
        double expected = 0;
        for (int n = 0; n < 2; n++)
        {
            var row = logits.Data.Slice(n * 4, 4).ToArray();
            double max = row.Max(), lse = Math.Log(row.Sum(v => Math.Exp(v - max))) + max;
            double nll = lse - row[labels[n]];
            double uniform = row.Sum(v => lse - v) / 4;
            expected += (1 - eps) * nll + eps * uniform;
        }
        Assert.Equal(expected / 2, smoothed, 1e-5);
    }

    [Fact]
    public void Labels_outside_the_classes_are_rejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CrossEntropyLoss().Forward(new FloatTensor(2, 3), [0, 3]));
        Assert.Contains("label 3", e.Message);
    }
}
