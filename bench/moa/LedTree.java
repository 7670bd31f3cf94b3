import com.yahoo.labs.samoa.instances.Instance;
import moa.classifiers.trees.HoeffdingTree;
import moa.streams.ConceptDriftStream;

/** Prequential accuracy of MOA's HoeffdingTree (grace period 50, confidence 1e-7, the paper's
 *  settings) on MOA's LED drifting from 3 to 5 swapped segments at record `centre` (width 50).
 *  Args: records, centre, block (records per printed window). */
public class LedTree {
  public static void main(String[] args) {
    int n = Integer.parseInt(args[0]), centre = Integer.parseInt(args[1]);
    int block = Integer.parseInt(args[2]);
    ConceptDriftStream stream = new ConceptDriftStream();
    stream.getOptions().setViaCLIString("-s (generators.LEDGeneratorDrift -d 3) "
        + "-d (generators.LEDGeneratorDrift -d 5 -i 2) -p " + centre + " -w 50");
    stream.prepareForUse();
    HoeffdingTree tree = new HoeffdingTree();
    tree.getOptions().setViaCLIString("-g 50 -c 1e-7");
    tree.setModelContext(stream.getHeader());
    tree.prepareForUse();
    int correct = 0, inBlock = 0;
    StringBuilder windows = new StringBuilder();
    for (int t = 1; t <= n; t++) {
      Instance record = (Instance) stream.nextInstance().getData();
      if (tree.correctlyClassifies(record)) { correct++; inBlock++; }
      tree.trainOnInstance(record);
      if (t % block == 0) { windows.append(String.format(" %.1f", 100.0 * inBlock / block)); inBlock = 0; }
    }
    System.out.printf("MOA HoeffdingTree: accuracy %.2f %%; per %d records:%s%n",
        100.0 * correct / n, block, windows);
  }
}
