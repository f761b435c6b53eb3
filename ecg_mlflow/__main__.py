from ecg_mlflow.cli import main

main()
