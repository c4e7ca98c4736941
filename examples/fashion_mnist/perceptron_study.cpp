#include <Eigen/Eigenvalues>
#include <dropnet/dropnet.hpp>
#include <fstream>
#include <stdexcept>
#include <string>

#include "plot.hpp"
#include "uncertainty_study.hpp"

namespace fmnist {

namespace {

using dropnet::Labels;
using dropnet::Matrix;

constexpr int negative_class = 1;  // Trouser
constexpr int positive_class = 8;  // Bag

/// The images of the two classes, labelled 0 (Trouser) and 1 (Bag).
struct TwoClasses {
  Matrix<float> x;
  Labels y;
};

TwoClasses two_classes(const dropnet::LabeledImages<float>& set) {
  std::vector<dropnet::Index> kept;
  for (dropnet::Index j = 0; j < set.size(); ++j)
    if (set.labels(j) == negative_class || set.labels(j) == positive_class) kept.push_back(j);
  TwoClasses out{Matrix<float>(set.images.rows(), dropnet::Index(kept.size())),
                 Labels(dropnet::Index(kept.size()))};
  for (std::size_t i = 0; i < kept.size(); ++i) {
    out.x.col(dropnet::Index(i)) = set.images.col(kept[i]);
    out.y(dropnet::Index(i)) = set.labels(kept[i]) == positive_class ? 1 : 0;
  }
  return out;
}

double accuracy_of(const dropnet::Perceptron<float>& p, const TwoClasses& set) {
  return double((p.predict(set.x).array() == set.y.array()).count()) / double(set.y.size());
}

void report(std::FILE* out, const char* what, const dropnet::PerceptronResult& r,
            const dropnet::Perceptron<float>& p, const TwoClasses& train, const TwoClasses& test) {
  std::fprintf(out,
               "%s: %d epochs, %ld updates, %s; %ld training errors of %td, train accuracy "
               "%.4f, test accuracy %.4f\n",
               what, r.epochs, r.updates,
               r.converged ? "converged (separable)" : (r.cycled ? "cycled" : "did not converge"),
               r.training_errors, train.y.size(), accuracy_of(p, train), accuracy_of(p, test));
}

/// The top two principal directions of x (rows: pixels), as a 2 x 784 projection.
Matrix<float> principal_plane(const Matrix<float>& x, const Eigen::VectorXf& mean) {
  const Matrix<float> centered = x.colwise() - mean;
  const Matrix<float> covariance = centered * centered.transpose() / float(x.cols());
  Eigen::SelfAdjointEigenSolver<Matrix<float>> solver(covariance);
  return solver.eigenvectors().rightCols(2).rowwise().reverse().transpose();
}

void write_points(const std::string& path, const Matrix<float>& z, const Labels& y) {
  std::ofstream csv(path);
  if (!csv) throw std::runtime_error("cannot write '" + path + "'");
  csv << "pc1,pc2,label\n";
  for (dropnet::Index j = 0; j < z.cols(); ++j)
    csv << z(0, j) << ',' << z(1, j) << ',' << y(j) << '\n';
}

std::string plot_boundary(const std::string& csv, const std::string& image,
                          const dropnet::Perceptron<float>& p) {
  const double w1 = p.weights()(0), w2 = p.weights()(1), b = p.bias();
  const std::string line = "(-(" + std::to_string(w1) + ")*x - (" + std::to_string(b) + "))/(" +
                           std::to_string(w2) + ")";
  const std::string s =
      "set datafile separator ','\nset title 'Perceptron on Fashion-MNIST test images: Trouser "
      "vs Bag, first two principal components'\nset xlabel 'PC 1'\nset ylabel 'PC 2'\n"
      "set key top right\nset grid\nplot '" +
      csv +
      "' skip 1 using 1:($3==0?$2:1/0) with points "
      "pt 7 ps 0.4 lc rgb '#1f77b4' title 'Trouser', '" +
      csv +
      "' skip 1 using "
      "1:($3==1?$2:1/0) with points pt 7 ps 0.4 lc rgb '#d62728' title 'Bag', " +
      line + " with lines lw 3 lc rgb 'black' title 'w^T x + b = 0'\n";
  return plot_commands(image, s);
}

}  // namespace

int run_perceptron_study(const Options& options, Data& data, std::FILE* out) {
  const TwoClasses train = two_classes(data.train), test = two_classes(data.test);
  std::fprintf(out,
               "Perceptron (Rosenblatt rule, learning rate 1, at most %d epochs): Trouser (0) "
               "vs Bag (1), %td training and %td test images\n",
               options.train.epochs, train.y.size(), test.y.size());
  dropnet::PerceptronOptions o;
  o.max_epochs = options.train.epochs;
  dropnet::Perceptron<float> pixels(train.x.rows());
  report(out, "784 pixels", pixels.fit(train.x, train.y, o), pixels, train, test);

  const Eigen::VectorXf mean = train.x.rowwise().mean();
  const Matrix<float> plane = principal_plane(train.x, mean);
  const TwoClasses train2{plane * (train.x.colwise() - mean), train.y};
  const TwoClasses test2{plane * (test.x.colwise() - mean), test.y};
  dropnet::Perceptron<float> flat(2);
  o.pocket = true;
  report(out, "2 principal components, pocket", flat.fit(train2.x, train2.y, o), flat, train2,
         test2);
  std::fprintf(out, "Boundary: %.4f pc1 + %.4f pc2 + %.4f = 0\n", double(flat.weights()(0)),
               double(flat.weights()(1)), double(flat.bias()));
  if (!options.plot_path.empty()) {
    const std::string csv = with_extension(options.plot_path, ".csv");
    write_points(csv, test2.x, test2.y);
    const std::string image = plot_boundary(csv, options.plot_path, flat);
    if (!image.empty()) std::fprintf(out, "Figure: %s (test images)\n", image.c_str());
  }
  return 0;
}

}  // namespace fmnist
