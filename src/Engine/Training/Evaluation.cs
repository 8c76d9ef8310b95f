using Engine.Data;
using Engine.Layers;

namespace Engine.Training;

/// <summary>Accuracy of a network's arg-max predictions.</summary>
public static class Evaluation
{
    /// <summary>The number of rows of logits [N, C] whose arg-max equals the label (ties go to the lowest class, as torch.argmax).</summary>
    public static int CountCorrect(FloatTensor logits, ReadOnlySpan<int> labels)
    {
        int classes = logits.Dim(1), correct = 0;
        for (int n = 0; n < labels.Length; n++)
        {
            if (ClassScores.ArgMax(logits.Data.Slice(n * classes, classes)) == labels[n])
            {
                correct++;
            }
        }
        return correct;
    }

    /// <summary>The arg-max class of every sample of <paramref name="data"/>, in order, in batches of <paramref name="batchSize"/>.</summary>
    public static int[] Predictions(Sequential network, IBatchSource data, int batchSize = 250)
    {
        var inputs = new FloatTensor([batchSize, .. data.SampleShape]);
        int[] labels = new int[batchSize], predictions = new int[data.Count];
        for (int b = 0, start = 0; start < data.Count; b++, start += batchSize)
        {
            int count = data.FillBatch(0, b, batchSize, inputs.Data, labels);
            inputs.Resize([count, .. data.SampleShape]);
            FloatTensor logits = network.Forward(inputs);
            int classes = logits.Dim(1);
            for (int n = 0; n < count; n++)
            {
                predictions[start + n] = ClassScores.ArgMax(logits.Data.Slice(n * classes, classes));
            }
            inputs.Resize([batchSize, .. data.SampleShape]);
        }
        return predictions;
    }

    /// <summary>Fraction of samples of <paramref name="data"/> classified correctly, in batches of <paramref name="batchSize"/>.</summary>
    public static float Accuracy(Sequential network, IBatchSource data, int batchSize = 250)
    {
        var inputs = new FloatTensor([batchSize, .. data.SampleShape]);
        var labels = new int[batchSize];
        long correct = 0;
        int batches = (data.Count + batchSize - 1) / batchSize;
        for (int b = 0; b < batches; b++)
        {
            int count = data.FillBatch(0, b, batchSize, inputs.Data, labels);
            inputs.Resize([count, .. data.SampleShape]);
            correct += CountCorrect(network.Forward(inputs), labels.AsSpan(0, count));
            inputs.Resize([batchSize, .. data.SampleShape]);
        }
        return data.Count == 0 ? float.NaN : (float)correct / data.Count;
    }
}
