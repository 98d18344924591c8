// Row stationary (Eyeriss-like), two levels: each cluster of Sz(R) PEs computes one output row; PE i
// of a cluster keeps filter row i and reads input row i (a 1-D convolution per PE), and the partial
// sums of the cluster's PEs are reduced spatially. Output rows Y' go across clusters; ?k output
// channels, ?c input channels and ?x output columns (X') per step.
// Holes: ?k (output-channel tile), ?c (input-channel tile), ?x (output-column tile).
// Source: Chen et al., "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for
// Convolutional Neural Networks", ISCA 2016 (the row-stationary dataflow).
Dataflow {
	TemporalMap(?k,?k) K;
	TemporalMap(?c,?c) C;
	SpatialMap(1,1) Y';
	TemporalMap(?x,?x) X';
	TemporalMap(Sz(R),Sz(R)) R;
	TemporalMap(Sz(S),Sz(S)) S;
	Cluster(Sz(R), P);
	SpatialMap(1,1) Y;
	SpatialMap(1,1) R;
	TemporalMap(Sz(S),Sz(S)) S;
}
