Console.WriteLine("brainseg");
