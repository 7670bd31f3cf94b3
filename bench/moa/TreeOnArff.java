import com.yahoo.labs.samoa.instances.Instance;
import moa.classifiers.trees.HoeffdingTree;
import moa.streams.ArffFileStream;

/** Prequential accuracy and speed of MOA's HoeffdingTree on an ARFF file (class last), so it
 *  sees exactly the records driftflow's trees see (bench/compiled_tree.py writes the files).
 *  Args: arff path, grace period, split confidence. Prints: accuracy %, CPU microseconds a
 *  record (predict + learn, JIT warm-up included; the reading thread only), nodes. */
public class TreeOnArff {
  public static void main(String[] args) {
    ArffFileStream stream = new ArffFileStream(args[0], -1);
    stream.prepareForUse();
    HoeffdingTree tree = new HoeffdingTree();
    tree.getOptions().setViaCLIString("-g " + args[1] + " -c " + args[2]);
    tree.setModelContext(stream.getHeader());
    tree.prepareForUse();
    long correct = 0, n = 0;
    java.lang.management.ThreadMXBean clock = java.lang.management.ManagementFactory.getThreadMXBean();
    long start = clock.getCurrentThreadCpuTime();   // CPU time: the machine may be shared
    while (stream.hasMoreInstances()) {
      Instance record = (Instance) stream.nextInstance().getData();
      if (tree.correctlyClassifies(record)) correct++;
      tree.trainOnInstance(record);
      n++;
    }
    double us = (clock.getCurrentThreadCpuTime() - start) / 1e3 / n;
    double nodes = 0;
    for (moa.core.Measurement m : tree.getModelMeasurements()) {
      if (m.getName().equals("tree size (nodes)")) nodes = m.getValue();
    }
    System.out.printf("%.4f %.3f %.0f%n", 100.0 * correct / n, us, nodes);
  }
}
