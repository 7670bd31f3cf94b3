import com.yahoo.labs.samoa.instances.Instance;
import java.io.BufferedWriter;
import java.io.FileWriter;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import moa.classifiers.Classifier;
import moa.core.Measurement;
import moa.core.Utils;
import moa.options.ClassOption;
import moa.streams.ArffFileStream;

/** Prequential (test-then-train) run of a MOA learner on an ARFF file (class last), so it sees
 *  exactly the records driftflow's models see (bench/moa_peers.py writes the files).
 *  Args: arff path, learner as a MOA CLI string (e.g. "trees.HoeffdingTree -g 50 -c 1e-7",
 *  "meta.AdaptiveRandomForest -s 10"), predictions path (one predicted class index a line),
 *  random seed (for randomised learners such as ARF).
 *  The whole file is read first; only the predict + learn loop is timed (JIT warm-up included).
 *  Prints one JSON line: records, correct, accuracy (fraction), seconds (wall, System.nanoTime),
 *  cpu_seconds (the JVM's CPU time over the loop, every thread: JIT compiler and GC included,
 *  as Python's time.process_time) and the learner's own measurements (e.g. tree nodes). */
public class Prequential {
  public static void main(String[] args) throws Exception {
    ArffFileStream stream = new ArffFileStream(args[0], -1);
    stream.prepareForUse();
    Classifier learner = (Classifier) ClassOption.cliStringToObject(args[1], Classifier.class, null);
    if (learner.isRandomizable()) learner.setRandomSeed(Integer.parseInt(args[3]));
    learner.setModelContext(stream.getHeader());
    learner.prepareForUse();
    List<Instance> records = new ArrayList<>();
    while (stream.hasMoreInstances()) records.add((Instance) stream.nextInstance().getData());
    int n = records.size();
    int[] predicted = new int[n];
    long correct = 0;
    com.sun.management.OperatingSystemMXBean clock =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long cpuStart = clock.getProcessCpuTime();
    long start = System.nanoTime();
    for (int i = 0; i < n; i++) {
      Instance record = records.get(i);
      predicted[i] = Utils.maxIndex(learner.getVotesForInstance(record));   // 0 with no votes
      if (predicted[i] == (int) record.classValue()) correct++;
      learner.trainOnInstance(record);
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    double cpuSeconds = (clock.getProcessCpuTime() - cpuStart) / 1e9;
    writePredictions(args[2], predicted);
    StringBuilder json = new StringBuilder();
    json.append(String.format("{\"records\": %d, \"correct\": %d, \"accuracy\": %.8f, "
        + "\"seconds\": %.6f, \"cpu_seconds\": %.6f, \"measurements\": {",
        n, correct, n > 0 ? (double) correct / n : 0.0, seconds, cpuSeconds));
    String sep = "";
    Measurement[] measurements = learner.getModelMeasurements();
    for (Measurement m : measurements == null ? new Measurement[0] : measurements) {
      if (m == null || Double.isNaN(m.getValue()) || Double.isInfinite(m.getValue())) continue;
      json.append(sep).append('"').append(m.getName().replace("\\", "\\\\").replace("\"", "'"))
          .append("\": ").append(m.getValue());
      sep = ", ";
    }
    System.out.println(json.append("}}"));
  }

  private static void writePredictions(String path, int[] predicted) throws IOException {
    try (BufferedWriter out = new BufferedWriter(new FileWriter(path))) {
      for (int p : predicted) { out.write(Integer.toString(p)); out.write('\n'); }
    }
  }
}
