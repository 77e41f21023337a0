"""Where models live: the BentoML model store (:mod:`.local`), S3 (:mod:`.s3`), and what a stored
model says about itself (:mod:`.records`). ``python -m klarna_pd.store`` moves and checks them."""
