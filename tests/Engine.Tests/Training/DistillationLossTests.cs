using Engine.Layers;
using Engine.Tests.Layers;
using Engine.Training;

namespace Engine.Tests.Training;

public class DistillationLossTests
{
    [Theory]
    [InlineData(1f, 0.5f, 0f)]
    [InlineData(4f, 0.7f, 0.1f)]
    [InlineData(20f, 1f, 0f)]
    public void Backward_matches_central_differences(float temperature, float weight, float smoothing)
    {
        var z = TestData.FloatTensor(11, 3, 7);
        var t = TestData.FloatTensor(12, 3, 7);
        for (int i = 0; i < t.Length; i++)
        {
            t.Data[i] *= 3;   // a confident teacher
        }
        int[] labels = [6, 0, 3];
        var loss = new DistillationLoss(temperature, weight, smoothing);
        loss.Forward(z, t, labels);
        float[] analytic = loss.Backward().Data.ToArray();
        GradientCheck.Compare("logits", z.Length, j => z.Data[j], (j, v) => z.Data[j] = v, analytic,
            () => new DistillationLoss(temperature, weight, smoothing).Forward(z, t, labels), maxCoordinates: 21,
            // The soft term varies on the scale of T: a step that grows with T keeps float rounding out of the difference.
            step: 1e-3f * temperature,
            absoluteTolerance: 1e-4, relativeTolerance: 1e-2);
    }

    [Fact]
    public void Without_soft_weight_it_is_cross_entropy_and_a_student_equal_to_its_teacher_adds_nothing()
    {
        var z = TestData.FloatTensor(5, 4, 10);
        var t = TestData.FloatTensor(6, 4, 10);
        int[] labels = [1, 9, 4, 4];
        var cross = new CrossEntropyLoss(0.1f);
        var labelsOnly = new DistillationLoss(4f, 0f, 0.1f);
        Assert.Equal(cross.Forward(z, labels), labelsOnly.Forward(z, t, labels));
        Assert.Equal(cross.Backward().Data.ToArray(), labelsOnly.Backward().Data.ToArray());

        // KL(q || q) = 0 and p - q = 0: the soft term neither adds loss nor gradient.
        var both = new DistillationLoss(3f, 0.6f);
        float loss = both.Forward(z, z, labels);
        Assert.Equal(0.4f * new CrossEntropyLoss().Forward(z, labels), loss, 1e-5f);
        Assert.Equal(HardGradient(z, labels, 0.4f), both.Backward().Data.ToArray(), (a, b) => MathF.Abs(a - b) < 1e-6f);

        static float[] HardGradient(Engine.Tensors.FloatTensor z, int[] labels, float scale)
        {
            var ce = new CrossEntropyLoss();
            ce.Forward(z, labels);
            return ce.Backward().Data.ToArray().Select(g => g * scale).ToArray();
        }
    }

    [Fact]
    public void Bad_settings_and_shapes_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationLoss(0f, 0.5f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DistillationLoss(2f, 1.5f));
        var loss = new DistillationLoss(2f, 0.5f);
        Assert.Throws<ArgumentException>(() => loss.Forward(TestData.FloatTensor(1, 2, 10), TestData.FloatTensor(2, 2, 9), [0, 1]));
        Sequential network = SeedNetwork.Create(seed: 1, conv1Channels: 2, conv2Channels: 2, hidden: 4);
        Assert.Throws<ArgumentException>(() => new Trainer(network, new TrainingOptions { Teacher = network }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Trainer(network, new TrainingOptions { Teacher = SeedNetwork.Create(seed: 2), DistillationWeight = -0.1f }));
    }
}
