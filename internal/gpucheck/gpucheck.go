// Package gpucheck reads what the gantrain binary writes during the GPU check
// (scripts/gpu-check.sh): a run's last evaluation, `gantrain eval --json` reports,
// .npy samples and the classifier's log. The check's thresholds on them are tests of
// package gpu (gpu/checkfiles_test.go), which the check runs from gpu.test on the GPU
// machine.
package gpucheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/gantrain/gantrain/imageio"
	"github.com/gantrain/gantrain/output"
)

// LastEval returns the last evaluation record of a run's metrics.jsonl.
func LastEval(metricsPath string) (output.EvalRecord, error) {
	f, err := os.Open(metricsPath)
	if err != nil {
		return output.EvalRecord{}, err
	}
	defer f.Close()
	var last output.EvalRecord
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"eval"`) {
			continue
		}
		var rec output.EvalRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return output.EvalRecord{}, fmt.Errorf("%s: %w", metricsPath, err)
		}
		last, found = rec, true
	}
	if err := sc.Err(); err != nil {
		return output.EvalRecord{}, fmt.Errorf("%s: %w", metricsPath, err)
	}
	if !found {
		return output.EvalRecord{}, fmt.Errorf("%s: no evaluation record", metricsPath)
	}
	return last, nil
}

// Scores are the numbers of a `gantrain eval --parzen --classifier --json` report.
type Scores struct {
	Sigma, LL, SE, ClassifierScore, FrechetDistance float64
	ParzenSeconds                                   float64 // how long the Parzen estimate took
}

// ReadScores reads a `gantrain eval --parzen --classifier --json` report.
func ReadScores(path string) (Scores, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Scores{}, err
	}
	var r struct {
		Result struct {
			Parzen *struct {
				LL      float64 `json:"ll"`
				SE      float64 `json:"se"`
				Sigma   float64 `json:"sigma"`
				Seconds float64 `json:"seconds"`
			} `json:"parzen"`
			Classifier *struct {
				Score           float64 `json:"score"`
				FrechetDistance float64 `json:"frechet_distance"`
			} `json:"classifier"`
		} `json:"result"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Scores{}, fmt.Errorf("%s: %w", path, err)
	}
	p, c := r.Result.Parzen, r.Result.Classifier
	if p == nil || c == nil {
		return Scores{}, fmt.Errorf("%s: want both the Parzen and the classifier result", path)
	}
	return Scores{Sigma: p.Sigma, LL: p.LL, SE: p.SE, ClassifierScore: c.Score, FrechetDistance: c.FrechetDistance,
		ParzenSeconds: p.Seconds}, nil
}

// LargestDifference returns max |a−b| over two .npy arrays of one shape.
func LargestDifference(pathA, pathB string) (float64, error) {
	a, shapeA, err := readNPY(pathA)
	if err != nil {
		return 0, err
	}
	b, shapeB, err := readNPY(pathB)
	if err != nil {
		return 0, err
	}
	if fmt.Sprint(shapeA) != fmt.Sprint(shapeB) {
		return 0, fmt.Errorf("shapes %v (%s) and %v (%s) differ", shapeA, pathA, shapeB, pathB)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d, nil
}

func readNPY(path string) ([]float32, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	x, shape, err := imageio.ReadNPY(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return x, shape, nil
}

var accuracyLine = regexp.MustCompile(`test accuracy ([0-9.]+)%`)

// ClassifierAccuracy returns the last test accuracy, in percent, that the log of
// `gantrain classifier train` reports.
func ClassifierAccuracy(logPath string) (float64, error) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0, err
	}
	m := accuracyLine.FindAllSubmatch(b, -1)
	if m == nil {
		return 0, fmt.Errorf("%s: no test accuracy", logPath)
	}
	return strconv.ParseFloat(string(m[len(m)-1][1]), 64)
}
