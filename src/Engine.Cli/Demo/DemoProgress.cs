using Engine.Cli.Commands;
using Engine.Training;
using Spectre.Console;

namespace Engine.Cli.Demo;

/// <summary>
/// What <c>engine demo</c> shows while it works: on a terminal, a Spectre.Console progress bar per piece of work (the
/// training epochs, each fine-tuning, the sweep, the timings) under one heading line per step; with standard output
/// redirected, plain lines as <c>engine train</c> prints them (a line every 50 batches and per epoch, a line per
/// measurement), so a log shows the run advancing.
/// </summary>
internal sealed class DemoProgress(ProgressContext? context)
{
    /// <summary>One heading line: a step of the pipeline begins.</summary>
    public void Step(string text) => ConsoleReport.Line(text);

    /// <summary>An observer of one training run of <paramref name="epochs"/> epochs of <paramref name="batches"/> batches each.</summary>
    public ITrainingObserver Training(string label, int epochs, int batches) => context is null
        ? new TrainCommand.PlainLines()
        : new TrainCommand.ProgressBar(context.AddTask(Markup.Escape(label), maxValue: epochs * (double)batches));

    /// <summary>A count of <paramref name="total"/> items of work; each <see cref="Counter.Done"/> advances it by one.</summary>
    public Counter Count(string label, int total) =>
        new(context?.AddTask(Markup.Escape(label), maxValue: total), label, total);

    /// <summary>Items of work done so far: a bar on a terminal, a line per item otherwise.</summary>
    internal sealed class Counter(ProgressTask? task, string label, int total)
    {
        private int _done;

        public void Done(string detail)
        {
            _done++;
            if (task is null)
            {
                ConsoleReport.Line($"{label} {_done}/{total}: {detail}");
                return;
            }
            task.Description = Markup.Escape($"{label}: {detail}");
            task.Increment(1);
        }
    }
}
