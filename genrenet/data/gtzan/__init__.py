"""GTZAN facts shipped as package data: the Kereliuk et al. 2015 fault-filtered split and Sturm's 2012 index."""
