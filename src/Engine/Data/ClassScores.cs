namespace Engine.Data;

/// <summary>
/// Reading a classifier's answer off its scores (logits or probabilities, one per class): the arg-max and the k best
/// classes. Ties go to the lowest class index, as <c>torch.argmax</c> and <c>torch.topk</c> on CPU resolve them.
/// </summary>
public static class ClassScores
{
    /// <summary>The index of the largest score, argmax_i scores[i] (the first one on ties); -1 for no scores.</summary>
    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        if (scores.IsEmpty)
        {
            return -1;
        }
        int best = 0;
        for (int i = 1; i < scores.Length; i++)
        {
            if (scores[i] > scores[best])
            {
                best = i;
            }
        }
        return best;
    }

    /// <summary>
    /// The <c>k = min(classes.Length, scores.Length)</c> highest scores in descending order: classes[j] is the j-th best
    /// class and, when <paramref name="topScores"/> is not empty (it then needs k entries), topScores[j] its score.
    /// Returns k. Allocation-free: a partial insertion sort, O(k n), fine for the handful of classes a caller shows.
    /// A NaN score ranks below every number.
    /// </summary>
    public static int TopK(ReadOnlySpan<float> scores, Span<int> classes, Span<float> topScores = default)
    {
        int k = Math.Min(classes.Length, scores.Length);
        if (!topScores.IsEmpty && topScores.Length < k)
        {
            throw new ArgumentException($"top-k: {k} classes need {k} score slots, got {topScores.Length}.", nameof(topScores));
        }
        int filled = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            float s = scores[i];
            // Position of class i among the best so far: after every kept class that scores at least as high (ties keep
            // the lower index first).
            int at = filled;
            while (at > 0 && Beats(s, scores[classes[at - 1]]))
            {
                at--;
            }
            if (at >= k)
            {
                continue;
            }
            int last = Math.Min(filled, k - 1);
            for (int j = last; j > at; j--)
            {
                classes[j] = classes[j - 1];
            }
            classes[at] = i;
            filled = Math.Min(filled + 1, k);
        }
        for (int j = 0; j < k && !topScores.IsEmpty; j++)
        {
            topScores[j] = scores[classes[j]];
        }
        return k;
    }

    // Whether score a ranks strictly above b (NaN ranks lowest).
    private static bool Beats(float a, float b) => float.IsNaN(b) ? !float.IsNaN(a) : a > b;
}
